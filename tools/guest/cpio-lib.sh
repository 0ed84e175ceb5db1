# shellcheck shell=bash
# Minimal deterministic writer for "newc" cpio archives (the format the Linux
# initramfs unpacker reads). Sourced by tools/guest/mkcpio and
# tools/guest/mkinitramfs. No root needed: device nodes, owners and modes are
# written into the archive, not created on the host. All entries get uid 0,
# gid 0, mtime 0 and inode numbers counted from 1, so the output depends only
# on the arguments and the file contents.
#
# Every function writes to stdout. Paths are given without the leading "/".

cpio_ino=0

cpio_pad4() { # $1 = number of bytes written so far in this entry part
	case $(($1 % 4)) in
	1) printf '\0\0\0' ;;
	2) printf '\0\0' ;;
	3) printf '\0' ;;
	esac
}

# cpio_header NAME MODE SIZE NLINK [RDEVMAJOR RDEVMINOR]
cpio_header() {
	local name=$1 mode=$2 size=$3 nlink=$4 rmaj=${5:-0} rmin=${6:-0} ino=0
	local LC_ALL=C
	if [[ $name != TRAILER!!! ]]; then
		cpio_ino=$((cpio_ino + 1))
		ino=$cpio_ino
	fi
	# magic ino mode uid gid nlink mtime filesize devmajor devminor
	# rdevmajor rdevminor namesize check
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$ino" "$mode" 0 0 "$nlink" 0 "$size" 0 0 "$rmaj" "$rmin" $((${#name} + 1)) 0
	printf '%s\0' "$name"
	cpio_pad4 $((110 + ${#name} + 1))
}

cpio_dir() { # NAME PERM(octal)
	cpio_header "$1" $((8#40000 | 8#$2)) 0 2
}

cpio_file() { # NAME PERM(octal) HOSTFILE
	local size
	size=$(stat -L -c %s "$3")
	cpio_header "$1" $((8#100000 | 8#$2)) "$size" 1
	cat "$3"
	cpio_pad4 "$size"
}

cpio_symlink() { # NAME TARGET
	local LC_ALL=C
	cpio_header "$1" $((8#120777)) "${#2}" 1
	printf '%s' "$2"
	cpio_pad4 "${#2}"
}

cpio_chardev() { # NAME PERM(octal) MAJOR MINOR
	cpio_header "$1" $((8#20000 | 8#$2)) 0 1 "$3" "$4"
}

cpio_trailer() { # end of archive; pad the file with `truncate -s %512`
	cpio_header 'TRAILER!!!' 0 0 1
}
