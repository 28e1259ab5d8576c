#!/usr/bin/env bash
# fake_curl.sh - a stand-in for curl that plays the Hugging Face hub from local
# files, for tests/test_download_model.sh (installed there as "curl" first on
# PATH).  It knows only the options scripts/download-model.sh uses and refuses
# any other, so that a change there is noticed here.
#
# $FAKE_HUB/repos/OWNER/NAME/FILE is served as .../OWNER/NAME/resolve/REV/FILE
# (any REV but "nosuchrev").  *.safetensors and *.bin are served as Git LFS
# files: a 302 to a storage host with X-Linked-Etag "<sha256>", X-Linked-Size
# and an ETag that is not their hash; other files with a 200 and ETag "<git
# blob sha1>".  X-Repo-Commit is c0ffee0...01 for every repository.  Beside them,
# .meta/FILE.etag replaces the announced value (written as is, quotes and
# all), .meta/FILE.noetag announces none, .meta/FILE.served holds bytes to
# send instead of FILE's, and .meta/FILE.cut holds a byte position at which
# the transfer breaks off (curl exit status 18).  A repository whose
# OWNER/NAME is a file, not a folder, has moved to the OWNER/NAME that file
# holds (a relative 307, as the hub answers for renamed repositories).
# Every call is appended to $FAKE_HUB/log, with the config read by -K.
set -u
hub="${FAKE_HUB:?FAKE_HUB is not set}"
printf 'curl %s\n' "$*" >>"$hub/log"

head=0 follow=0 fail=0 resume=0 out="" url=""
while [ $# -gt 0 ]; do
    case "$1" in
    --retry | --connect-timeout) shift 2; continue ;;
    -o) out="$2"; shift 2; continue ;;
    -C) [ "$2" = - ] || { echo "fake curl: -C takes only -" >&2; exit 2; }; resume=1; shift 2; continue ;;
    -K)
        [ "$2" = - ] || { echo "fake curl: -K takes only -" >&2; exit 2; }
        printf 'config: %s\n' "$(cat)" >>"$hub/log"
        shift 2
        continue
        ;;
    --progress-bar) ;;
    --*) echo "fake curl: unknown option $1" >&2; exit 2 ;;
    -?*)
        letters="${1#-}"
        while [ -n "$letters" ]; do
            case "${letters:0:1}" in
            s | S) ;;
            I) head=1 ;;
            L) follow=1 ;;
            f) fail=1 ;;
            *) echo "fake curl: unknown option -${letters:0:1}" >&2; exit 2 ;;
            esac
            letters="${letters:1}"
        done
        ;;
    *) [ -z "$url" ] || { echo "fake curl: two URLs" >&2; exit 2; }; url="$1" ;;
    esac
    shift
done

site="https://huggingface.co"
file_size() {
    local n
    n="$(wc -c <"$1")"
    echo $((n))
}

# respond STATUS HEADER...: the headers of one response (CRLF, as curl -I
# shows them); with -f and a status of 400 or more, curl's error instead.
respond() {
    local status="$1"
    shift
    if [ "$fail" = 1 ] && [ "$status" -ge 400 ]; then
        echo "curl: (22) The requested URL returned error: $status" >&2
        exit 22
    fi
    if [ "$head" = 1 ]; then
        printf 'HTTP/2 %s\r\n' "$status"
        printf '%s\r\n' "$@"
        printf '\r\n'
    fi
}

while :; do
    case "$url" in
    "$site"/*) ;;
    *) echo "curl: (6) Could not resolve host: ${url#*://}" >&2; exit 6 ;;
    esac
    IFS=/ read -r owner name kw rev file <<<"${url#"$site"/}"
    [ "$kw" = resolve ] || { echo "fake curl: not a resolve URL: $url" >&2; exit 2; }
    dir="$hub/repos/$owner/$name"
    if [ -f "$dir" ]; then
        respond 307 "location: /$(cat "$dir")/resolve/$rev/$file" "content-type: text/plain; charset=utf-8"
        if [ "$follow" = 1 ]; then
            url="$site/$(cat "$dir")/resolve/$rev/$file"
            continue
        fi
        exit 0
    fi
    break
done

if [ ! -d "$dir" ]; then
    respond 401 "x-error-code: RepositoryNotFound" "x-error-message: Repository not found"
    exit 0
fi
if [ "$rev" = nosuchrev ]; then
    respond 404 "x-error-code: RevisionNotFound" "x-error-message: Invalid rev id: $rev"
    exit 0
fi
commit="c0ffee0000000000000000000000000000000001"
if [ ! -f "$dir/$file" ]; then
    respond 404 "x-repo-commit: $commit" "x-error-code: EntryNotFound" "x-error-message: Entry not found"
    exit 0
fi

meta="$dir/.meta/$file"
size="$(file_size "$dir/$file")"
lfs=0
case "$file" in *.safetensors | *.bin) lfs=1 ;; esac
if [ -f "$meta.etag" ]; then
    etag="$(cat "$meta.etag")"
elif [ "$lfs" = 1 ]; then
    etag="\"$(sha256sum <"$dir/$file" | cut -c1-64)\""
else
    etag="\"$({ printf 'blob %s\0' "$size"; cat "$dir/$file"; } | sha1sum | cut -c1-40)\""
fi

if [ "$head" = 1 ] || [ "$follow" = 0 ]; then
    if [ "$lfs" = 1 ]; then
        if [ -f "$meta.noetag" ]; then
            respond 302 "x-repo-commit: $commit" "x-linked-size: $size" "location: https://cdn-lfs.example.org/$file"
        else
            respond 302 "x-repo-commit: $commit" "etag: \"0123456789abcdef0123456789abcdef01234567\"" \
                "x-linked-size: $size" "x-linked-etag: $etag" "location: https://cdn-lfs.example.org/$file"
        fi
    elif [ -f "$meta.noetag" ]; then
        respond 200 "x-repo-commit: $commit" "content-length: $size"
    else
        respond 200 "x-repo-commit: $commit" "content-length: $size" "etag: $etag"
    fi
    exit 0
fi

# A download, redirects followed: the bytes, from where a resumed file ends.
body="$dir/$file"
[ -f "$meta.served" ] && body="$meta.served"
total="$(file_size "$body")"
offset=0
if [ "$resume" = 1 ] && [ -n "$out" ] && [ -f "$out" ]; then
    offset="$(file_size "$out")"
    printf 'resume from %s\n' "$offset" >>"$hub/log"
fi
end="$total"
if [ -f "$meta.cut" ]; then
    end="$(cat "$meta.cut")"
    [ "$end" -le "$total" ] || end="$total"
fi
if [ -n "$out" ]; then
    [ "$offset" -gt 0 ] || : >"$out"
    if [ "$end" -gt "$offset" ]; then tail -c +"$((offset + 1))" "$body" | head -c "$((end - offset))" >>"$out"; fi
else
    tail -c +"$((offset + 1))" "$body" | head -c "$((end - offset))"
fi
if [ "$end" -lt "$total" ]; then
    echo "curl: (18) transfer closed with $((total - end)) bytes remaining to read" >&2
    exit 18
fi
exit 0
