#!/usr/bin/env bash
# Installs mailferry on a Debian or Ubuntu server: the binary, the system user,
# /etc/mailferry/config.toml, /var/lib/mailferry, the systemd unit and the first
# domain; then prints the DNS records to publish and the admin set-up URL.
# Running it again changes nothing that is already there (the configuration is
# never overwritten); a new binary or unit replaces the old one and restarts.
# docs/install.md is the user documentation.
set -euo pipefail

readonly NAME=mailferry
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE

usage() {
  cat <<'EOF'
usage: install.sh --binary PATH [options]      install (or upgrade) mailferry
       install.sh https://…/mailferry [options] the same, downloading the binary first
       install.sh --uninstall [--root DIR] [--dry-run]

options:
  --binary PATH        the mailferry binary to install (from `npm run build`: dist/mailferry)
  --hostname H         this server's mail host name, the target of the MX records (e.g. mx.example.com)
  --domain D           the first domain to receive mail for (e.g. example.com)
  --admin-email E      the administrator's e-mail address (kept in the configuration)
  --database-url URL   a further node of an installation on PostgreSQL
                       (postgres://user:password@host:5432/db, docs/multi-node.md): written to
                       [database] url in the configuration (then mode 0600); domains and their
                       DKIM keys come from that database, so no domain is asked for or added
                       unless --domain names one; the SRS and link keys and the ACME account
                       and certificate come from it at the first start (nothing to copy)
  --non-interactive    ask nothing: take the options, else the defaults
  --dry-run            print every action it would take, change nothing
  --root DIR           install into DIR as a root directory (for tests): no systemctl,
                       the user is added to DIR/etc/passwd only
  --uninstall          remove the binary and the unit; keep /var/lib/mailferry,
                       /etc/mailferry and the user
  -h, --help           this help

Exit codes: 0 done, 1 failed (nothing after the failing step was done), 2 usage error.
EOF
}

die() {
  printf 'install.sh: %s\n' "$1" >&2
  exit 1
}
usage_error() {
  printf 'install.sh: %s\n(run install.sh --help for usage)\n' "$1" >&2
  exit 2
}
say() { printf '%s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }

BINARY="" URL="" HOST="" DOMAIN="" ADMIN_EMAIL="" ROOT="" DATABASE_URL=""
INTERACTIVE=1 DRY_RUN=0 UNINSTALL=0

parse_args() {
  while [ $# -gt 0 ]; do
    local arg=$1 value=""
    # --flag=value is --flag value.
    if [[ $arg == --*=* ]]; then
      value=${arg#*=}
      arg=${arg%%=*}
      set -- "$arg" "$value" "${@:2}"
    fi
    case $arg in
      --binary | --hostname | --domain | --admin-email | --root | --database-url)
        [ $# -ge 2 ] || usage_error "$arg needs a value"
        case $arg in
          --binary) BINARY=$2 ;;
          --hostname) HOST=$2 ;;
          --domain) DOMAIN=$2 ;;
          --admin-email) ADMIN_EMAIL=$2 ;;
          --root) ROOT=$2 ;;
          --database-url) DATABASE_URL=$2 ;;
        esac
        shift 2
        ;;
      --non-interactive) INTERACTIVE=0 && shift ;;
      --dry-run) DRY_RUN=1 && shift ;;
      --uninstall) UNINSTALL=1 && shift ;;
      -h | --help) usage && exit 0 ;;
      https://*)
        [ -z "$URL" ] || usage_error "more than one release URL"
        URL=$1 && shift
        ;;
      -*) usage_error "unknown option: $arg" ;;
      *) usage_error "not an option or an https:// release URL: $arg" ;;
    esac
  done
  if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || usage_error "--root $ROOT: not a directory"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" != / ] || ROOT=""
  fi
  [ "$UNINSTALL" = 1 ] && return
  if [ -n "$BINARY" ] && [ -n "$URL" ]; then usage_error "give --binary or a release URL, not both"; fi
  if [ -z "$BINARY" ] && [ -z "$URL" ]; then usage_error "which binary? give --binary PATH (e.g. dist/mailferry) or a release URL"; fi
  if [ -n "$BINARY" ]; then
    [ -f "$BINARY" ] || die "--binary $BINARY: no such file"
    BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
  fi
  # No quotes, backslashes, spaces or control characters: the URL goes into config.toml as a string.
  local database_url='^postgres(ql)?://[^"\\[:space:][:cntrl:]]+$'
  if [ -n "$DATABASE_URL" ] && ! [[ $DATABASE_URL =~ $database_url ]]; then
    usage_error "--database-url: must be a URL such as postgres://mailferry:PASSWORD@db.internal:5432/mailferry (no quotes, backslashes or spaces)"
  fi
  # Ask only on a terminal: piped or scripted runs take the options and defaults.
  [ -t 0 ] || INTERACTIVE=0
}

# Where things go; with --root every path is inside that directory.
set_paths() {
  BIN_PATH=$ROOT/usr/local/bin/$NAME
  UNIT_PATH=$ROOT/etc/systemd/system/$NAME.service
  CONFIG_DIR=$ROOT/etc/$NAME
  CONFIG_PATH=$CONFIG_DIR/config.toml
  DATA_DIR=$ROOT/var/lib/$NAME
}

# Every change goes through act: it prints the command, and runs it unless --dry-run.
act() {
  if [ "$DRY_RUN" = 1 ]; then printf 'would run:'; else printf '+'; fi
  printf ' %q' "$@"
  printf '\n'
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# Temporary files to remove however the script ends.
TEMPS=()
cleanup() { if [ ${#TEMPS[@]} -gt 0 ]; then rm -f "${TEMPS[@]}"; fi; }
trap cleanup EXIT

require_root() {
  [ "$DRY_RUN" = 1 ] || [ "$(id -u)" = 0 ] || die "run it as root (sudo $0 …); --dry-run shows what it would do"
}

# --- checks -------------------------------------------------------------------------

# The ELF machine number (e_machine) a binary for this CPU has.
expected_machine() {
  case $(uname -m) in
    x86_64 | amd64) echo 62 ;;
    aarch64 | arm64) echo 183 ;;
    *) die "unsupported CPU architecture $(uname -m): mailferry runs on x86_64 and aarch64" ;;
  esac
}

check_system() {
  [ "$(uname -s)" = Linux ] || die "mailferry runs on Linux, this is $(uname -s)"
  local release=$ROOT/etc/os-release id="" like=""
  if [ -r "$release" ]; then
    id=$(sed -n 's/^ID=//p' "$release" | tr -d '"')
    like=$(sed -n 's/^ID_LIKE=//p' "$release" | tr -d '"')
  fi
  case " $id $like " in
    *" debian "* | *" ubuntu "*) ;;
    *) warn "not Debian or Ubuntu (${id:-no $release}): the steps are the same, but untested there" ;;
  esac
  if [ -z "$ROOT" ] && [ ! -d /run/systemd/system ]; then
    local problem="systemd is not running here (not PID 1): mailferry is installed as a systemd service"
    if [ "$DRY_RUN" = 1 ]; then warn "$problem"; else die "$problem"; fi
  fi
}

# The binary must be an ELF executable for this CPU and run (`mailferry version`).
check_binary() {
  local file=$1 magic machine want
  magic=$(od -An -tx1 -N4 "$file" | tr -d ' \n')
  [ "$magic" = 7f454c46 ] || die "$file is not a Linux executable (no ELF header)"
  machine=$(od -An -tu2 -j18 -N2 "$file" | tr -d ' \n')
  want=$(expected_machine)
  [ "$machine" = "$want" ] || die "$file is built for another CPU (ELF machine $machine, this $(uname -m) needs $want)"
  VERSION=$("$file" version 2>&1) || die "$file does not run: $VERSION"
  say "binary: $VERSION"
}

# The binary to install: --binary, or the release URL downloaded to a temporary file.
fetch_binary() {
  if [ -n "$BINARY" ]; then
    SOURCE=$BINARY
  elif [ "$DRY_RUN" = 1 ]; then
    say "would download $URL"
    SOURCE=""
    return
  else
    command -v curl >/dev/null || die "curl is needed to download $URL (apt-get install curl), or copy the binary and give --binary"
    SOURCE=$(mktemp "${TMPDIR:-/tmp}/mailferry.XXXXXX")
    TEMPS+=("$SOURCE")
    say "+ curl $URL"
    curl -fsSL --proto '=https' --proto-redir '=https' --tlsv1.2 -o "$SOURCE" "$URL" || die "download of $URL failed"
    chmod 0755 "$SOURCE"
  fi
  check_binary "$SOURCE"
}

# --- answers --------------------------------------------------------------------------

ask() { # ask VAR "question" default
  local answer=""
  read -r -p "$2 [$3]: " answer || true
  printf -v "$1" '%s' "${answer:-$3}"
}

valid_hostname() {
  [[ $1 =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] && [ ${#1} -le 253 ]
}

# Host name, first domain and admin e-mail: the options, else asked, else defaults.
gather_answers() {
  local machine
  machine=$(hostname -f 2>/dev/null || uname -n)
  if [ "$INTERACTIVE" = 1 ]; then
    [ -n "$HOST" ] || ask HOST "Mail host name of this server (the MX records point here)" "$machine"
    # A further node serves the domains already in the shared database.
    [ -n "$DOMAIN" ] || [ -n "$DATABASE_URL" ] || ask DOMAIN "First domain to receive mail for (empty: none yet)" "${HOST#*.}"
    [ -n "$ADMIN_EMAIL" ] || ask ADMIN_EMAIL "Administrator e-mail address (empty: none)" ""
  fi
  if [ -z "$HOST" ]; then
    HOST=$machine
    say "host name: $HOST (this machine's; --hostname to choose)"
  fi
  HOST=$(printf '%s' "${HOST%.}" | tr '[:upper:]' '[:lower:]')
  DOMAIN=$(printf '%s' "${DOMAIN%.}" | tr '[:upper:]' '[:lower:]')
  valid_hostname "$HOST" || usage_error "host name $HOST: must be a fully qualified name such as mx.example.com"
  [ -z "$DOMAIN" ] || valid_hostname "$DOMAIN" || usage_error "domain $DOMAIN: must be a domain name such as example.com"
  # No quotes, backslashes or spaces: the address goes into config.toml as a string.
  local address='^[^@"\\[:space:][:cntrl:]]+@([A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$'
  [ -z "$ADMIN_EMAIL" ] || [[ $ADMIN_EMAIL =~ $address ]] || usage_error "admin e-mail $ADMIN_EMAIL: must be an address such as you@example.com"
}

# --- the system user ----------------------------------------------------------------

# A line of the target system's passwd or group database, or nothing.
entry() {
  if [ -n "$ROOT" ]; then
    grep -m1 "^$2:" "$ROOT/etc/$1" 2>/dev/null || true
  else
    getent "$1" "$2" || true
  fi
}

# A fake root gets the files useradd and groupadd expect (an empty login.defs means their defaults).
prepare_fake_root() {
  local dir spec file mode line
  for dir in etc usr/local/bin etc/systemd/system var/lib; do
    [ -d "$ROOT/$dir" ] || act mkdir -p "$ROOT/$dir"
  done
  for spec in 'passwd 0644 root:x:0:0:root:/root:/bin/bash' 'group 0644 root:x:0:' \
    'shadow 0640 root:*:19000:0:99999:7:::' 'gshadow 0640 root:*::' 'login.defs 0644'; do
    read -r file mode line <<<"$spec"
    [ -e "$ROOT/etc/$file" ] || write_file "$ROOT/etc/$file" "$mode" 0:0 "$line"
  done
}

ensure_user() {
  local prefix=()
  if [ -n "$ROOT" ]; then
    useradd --help 2>&1 | grep -q -- --prefix || die "this useradd has no --prefix (shadow 4.6 or newer needed for --root)"
    prefix=(--prefix "$ROOT")
  fi
  if [ -n "$(entry group "$NAME")" ]; then
    say "kept group $NAME (exists)"
  else
    act groupadd --system "${prefix[@]}" "$NAME"
  fi
  if [ -n "$(entry passwd "$NAME")" ]; then
    say "kept user $NAME (exists)"
  else
    act useradd --system "${prefix[@]}" --gid "$NAME" --home-dir "/var/lib/$NAME" --no-create-home \
      --shell /usr/sbin/nologin --comment "mailferry email forwarding" "$NAME"
  fi
  # Numeric ids: with --root the user exists only in that root's passwd.
  SERVICE_UID=$(entry passwd "$NAME" | cut -d: -f3)
  SERVICE_GID=$(entry group "$NAME" | cut -d: -f3)
  OWNER=${SERVICE_UID:-$NAME}:${SERVICE_GID:-$NAME}
  GROUP_OWNER=0:${SERVICE_GID:-$NAME}
}

# --- files --------------------------------------------------------------------------

# Writes the lines CONTENT (none when empty) to PATH atomically: a temporary file beside it, then mv.
write_file() { # write_file PATH MODE OWNER CONTENT
  local path=$1 mode=$2 owner=$3 content=$4 tmp
  if [ "$DRY_RUN" = 1 ]; then
    say "would write $path (mode $mode, owner $owner):"
    # The database password is not shown.
    if [ -n "$content" ]; then printf '%s\n' "$content" | sed -E 's/^/    /; s#(postgres(ql)?://[^:/@]*:)[^@]*@#\1***@#'; fi
    return
  fi
  tmp=$(mktemp "$path.XXXXXX")
  TEMPS+=("$tmp")
  if [ -n "$content" ]; then printf '%s\n' "$content" >"$tmp"; fi
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  mv -f "$tmp" "$path"
  say "+ wrote $path (mode $mode)"
}

# Copies SOURCE to DEST atomically unless DEST is already the same; CHANGED=1 when it was not.
install_copy() { # install_copy SOURCE DEST MODE
  local source=$1 dest=$2 mode=$3
  if [ -n "$source" ] && [ -f "$dest" ] && cmp -s "$source" "$dest"; then
    say "kept $dest (up to date)"
    return
  fi
  CHANGED=1
  [ "$DRY_RUN" = 1 ] || TEMPS+=("$dest.new")
  act install -m "$mode" -o 0 -g 0 -T "${source:-(downloaded binary)}" "$dest.new"
  act mv -f "$dest.new" "$dest"
}

ensure_dir() { # ensure_dir PATH MODE OWNER
  if [ -d "$1" ]; then
    say "kept $1"
  else
    act install -d -m "$2" -o "${3%%:*}" -g "${3##*:}" "$1"
  fi
}

config_toml() {
  local acme database
  if [ -n "$DATABASE_URL" ]; then
    database="
# The state shared with the other nodes (docs/multi-node.md); this node keeps its TLS files and spool in /var/lib/mailferry.
[database]
url = \"$DATABASE_URL\""
  fi
  if [ -n "$ADMIN_EMAIL" ]; then
    acme="
# The administrator's address: contact of the ACME (Let's Encrypt) account, for expiry notices.
[acme]
email = \"$ADMIN_EMAIL\""
  fi
  cat <<EOF
# mailferry configuration, written by install.sh (it never overwrites this file).
# Every setting and its default: mailferry config check. Restart after a change:
# systemctl restart mailferry
hostname = "$HOST"

# The MX listener, on every address, on the SMTP port.
[smtp]
host = "0.0.0.0"
port = 25

# Sending as an alias with an app password (docs/send-as.md): 587 with STARTTLS, 465 with TLS.
[submission]
enabled = true
host = "0.0.0.0"
port = 587
tls_port = 465

# The admin UI, API and /healthz stay on loopback: reach them through an SSH tunnel.
[http]
host = "127.0.0.1"
port = 8080
${acme:-}${database:-}
EOF
}

ensure_config() {
  if [ -e "$CONFIG_PATH" ]; then
    say "kept $CONFIG_PATH (an existing configuration is never overwritten)"
    if [ -n "$DATABASE_URL" ] && ! grep -q '^\[database\]' "$CONFIG_PATH"; then
      warn "--database-url was not written into the existing $CONFIG_PATH: add [database] url there yourself (docs/multi-node.md)"
    fi
  elif [ -n "$DATABASE_URL" ]; then
    # It holds the database password: readable by the service user only.
    write_file "$CONFIG_PATH" 0600 "$OWNER" "$(config_toml)"
  else
    write_file "$CONFIG_PATH" 0640 "$GROUP_OWNER" "$(config_toml)"
  fi
}

unit_source() {
  local candidate
  for candidate in "$HERE/systemd/$NAME.service" "$HERE/$NAME.service"; do
    if [ -f "$candidate" ]; then
      echo "$candidate"
      return
    fi
  done
  die "no $NAME.service beside install.sh (looked in $HERE/systemd and $HERE): copy systemd/ along with it"
}

# --- the service --------------------------------------------------------------------

# The installed CLI on the installed data and configuration, as the service user
# (with --root as the invoking user: that root's user exists nowhere else).
mailferry_command() {
  MF=()
  [ -n "$ROOT" ] || MF=(runuser -u "$NAME" --)
  MF+=(env "MAILFERRY_DATA_DIR=$DATA_DIR" "MAILFERRY_CONFIG=$CONFIG_PATH" "$BIN_PATH")
}

start_service() {
  local was_active=0
  if systemctl is-active --quiet "$NAME" 2>/dev/null; then was_active=1; fi
  act systemctl daemon-reload
  act systemctl enable --now "$NAME" || die "mailferry did not start; see: journalctl -u $NAME -n 50"
  if [ "$was_active" = 1 ] && [ "$CHANGED" = 1 ]; then
    act systemctl restart "$NAME" || die "mailferry did not restart; see: journalctl -u $NAME -n 50"
  fi
  act "${MF[@]}" health --wait 60s || die "mailferry does not answer on its health URL; see: journalctl -u $NAME -n 50"
}

ensure_domain() {
  # grep without -q reads all of the list (pipefail would count an early exit of the writer).
  if [ "$DRY_RUN" = 0 ] && "${MF[@]}" domain list | grep -x -- "$DOMAIN" >/dev/null; then
    # On a further node that is the shared database: its DKIM key is used as it is.
    say "kept domain $DOMAIN (already added)"
  else
    act "${MF[@]}" domain add "$DOMAIN"
  fi
}

# With --root the CLI ran as the invoking user: what it made goes to the service user.
hand_over_data() {
  if [ "$DRY_RUN" = 1 ] || [ -n "$(find "$DATA_DIR" \( ! -uid "$SERVICE_UID" -o ! -gid "$SERVICE_GID" \) -print -quit)" ]; then
    act chown -R "$OWNER" "$DATA_DIR"
  fi
}

print_next_steps() {
  [ "$DRY_RUN" = 0 ] || return 0
  if [ -n "$DOMAIN" ]; then
    say ""
    say "== DNS records to publish for $DOMAIN (check what DNS has later: mailferry dns check $DOMAIN)"
    "${MF[@]}" domain dns "$DOMAIN"
  else
    say ""
    say "== No domain yet: add one with  mailferry domain add example.com  (see docs/install.md)"
  fi
  say ""
  say "== Firewall: open TCP 25 (mail in) and 587 and 465 (sending as an alias, docs/send-as.md),"
  say "   e.g.  ufw allow 25,587,465/tcp"
  local url port problem
  problem=$(mktemp)
  TEMPS+=("$problem")
  say ""
  if url=$("${MF[@]}" admin setup-url 2>"$problem"); then
    port=$(printf '%s' "$url" | sed -n 's|^https\{0,1\}://[^/]*:\([0-9]*\)/.*|\1|p')
    say "== Create the first admin: on your computer run"
    say "     ssh -L ${port:-8080}:127.0.0.1:${port:-8080} root@$HOST"
    say "   and open"
    say "     $url"
  else
    say "== Admin set-up: $(sed 's/^mailferry: //' "$problem")"
  fi
}

# --- install and uninstall ----------------------------------------------------------

install_all() {
  check_system
  fetch_binary
  gather_answers
  CHANGED=0
  if [ -n "$ROOT" ]; then prepare_fake_root; fi
  ensure_user
  install_copy "$SOURCE" "$BIN_PATH" 0755
  ensure_dir "$DATA_DIR" 0700 "$OWNER"
  ensure_dir "$CONFIG_DIR" 0770 "$GROUP_OWNER"
  ensure_config
  install_copy "$(unit_source)" "$UNIT_PATH" 0644
  mailferry_command
  if [ -z "$ROOT" ]; then start_service; fi
  if [ -n "$DOMAIN" ]; then ensure_domain; fi
  print_next_steps
  if [ -n "$ROOT" ]; then hand_over_data; fi
  if [ "$DRY_RUN" = 1 ]; then say "" && say "dry run: nothing was changed"; fi
}

uninstall_all() {
  local removed_unit=0
  if [ -z "$ROOT" ] && [ -f "$UNIT_PATH" ]; then act systemctl disable --now "$NAME"; fi
  if [ -f "$UNIT_PATH" ]; then
    act rm -f "$UNIT_PATH"
    removed_unit=1
  else
    say "no $UNIT_PATH (not installed)"
  fi
  if [ -z "$ROOT" ] && [ "$removed_unit" = 1 ]; then act systemctl daemon-reload; fi
  if [ -f "$BIN_PATH" ]; then act rm -f "$BIN_PATH"; else say "no $BIN_PATH (not installed)"; fi
  say "kept $DATA_DIR (the data), $CONFIG_DIR (the configuration) and the user $NAME;"
  say "to erase them too: userdel $NAME && rm -r $DATA_DIR $CONFIG_DIR"
}

main() {
  parse_args "$@"
  # The service user runs commands from here, so the working directory must be one it may enter.
  cd /
  set_paths
  require_root
  if [ "$UNINSTALL" = 1 ]; then uninstall_all; else install_all; fi
}

main "$@"
