"""MQTT access control and TLS: credentials, client options, mosquitto configuration.

The broker side is mosquitto 2 with a password file and the ACL shipped in
``deploy/mosquitto/acl`` (identity = the authenticated user name ``%u``, never the client
id), and ``use_username_as_clientid true`` on every listener: the broker replaces the
client id a client asks for with its user name, so no participant can take over another's
MQTT session (and what was queued for it) or disconnect it by reusing its client id. One
connection per user at a time, then: a second connection with the same user replaces the
first (a user can displace only itself). The engine checks for another running engine as
``tokenbook-standby`` for that reason (``feeds.guard``).

``scripts/make-credentials`` creates the password file and a credentials file; this
module reads that file and builds the aiomqtt options a client needs::

    opts = client_options(credentials="mqtt-secrets/credentials", username="alpha",
                          tls_ca="ca.crt")
    async with BrokerClient("alpha", host, 8883, mqtt_options=opts) as c: ...
    gw = Gateway(engine, host, port, GatewayConfig(mqtt_options=client_options(
        credentials="mqtt-secrets/credentials", username=ENGINE_USER)))

and writes a mosquitto configuration for an authenticated (optionally TLS) listener
(``mosquitto_config`` / ``write_mosquitto_config``; ``EmbeddedBroker`` uses it too).

Credentials file: one ``user:password`` per line, ``#`` comments; owner-only (0600).
Only the standard library is imported at module level, so ``scripts/make-credentials``
can use this module with any Python 3.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("tokenbook.security")

__all__ = [
    "ENGINE_USER", "MD_USER", "OPERATOR_USER", "STANDBY_USER", "AGENT_USER", "RESERVED_USERS",
    "BROKER_RECEIVE_MAXIMUM",
    "ACL_FILE", "RISK_SUFFIX", "risk_user", "risk_acl_section",
    "ServerTLS", "probe_options_from_args",
    "valid_user", "new_password", "hash_password", "write_password_file", "write_credentials",
    "read_credentials", "load_credentials", "client_options", "add_client_arguments",
    "options_from_args", "mosquitto_config", "write_mosquitto_config",
]

#: The engine's broker user: the only writer of exec, md and status (see the ACL).
ENGINE_USER = "tokenbook-engine"
#: A read-only market-data user.
MD_USER = "tokenbook-md"
#: The exchange operator: session commands on tokenbook/v1/admin (halt, resume, close).
OPERATOR_USER = "tokenbook-operator"
#: The engine's second identity: reads the engine status only. A starting engine checks
#: with it that no other engine serves the broker: with ``use_username_as_clientid`` a
#: check as ``tokenbook-engine`` would itself take over the running engine's session.
STANDBY_USER = "tokenbook-standby"
#: The transfer agent (ERC-3643 agent role): freeze, forced transfer, recovery, pause.
AGENT_USER = "tokenbook-agent"
RESERVED_USERS = frozenset({ENGINE_USER, MD_USER, OPERATOR_USER, STANDBY_USER, AGENT_USER})
#: The shipped brokers' ``max_inflight_messages``: the Receive Maximum mosquitto announces
#: to MQTT 5 clients (and its send window to MQTT 3.1.1 ones). A cycle of 100 orders makes
#: ~250-400 publishes; at mosquitto's default of 20 the engine waits ~15 PUBACK round trips
#: to send them. Bounded, so a stalled 3.1.1 subscriber still holds few in flight.
BROKER_RECEIVE_MAXIMUM = 1000
#: A broker's risk/clearing user is ``{broker}-risk``: it reads the broker's drop copy
#: (``tokenbook/v1/dropcopy/{broker}``) and nothing private else. mosquitto's ``%u``
#: cannot drop a suffix, so ``scripts/make-credentials`` appends one section per broker
#: (``risk_acl_section``) to the shipped ACL.
RISK_SUFFIX = "-risk"
#: The ACL shipped with the repository (a checkout; copy it next to the password file).
ACL_FILE = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "acl"

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def valid_user(name: object) -> bool:
    """A user name usable in the ACL's ``%u`` patterns: a valid tokenbook topic segment.

    Same charset as ``feeds.topics.NAME_PATTERN`` (1-64 of ``A-Z a-z 0-9 _ . -``): no
    wildcard, no ``/``, no ``:`` (the credentials file separator), no space.
    """
    return isinstance(name, str) and 1 <= len(name) <= 64 and set(name) <= _NAME_CHARS


def risk_user(broker: str) -> str:
    """The risk/clearing user of ``broker``: the only reader of its drop copy."""
    if not valid_user(broker + RISK_SUFFIX):
        raise ValueError(f"broker {broker!r} has no valid risk user name")
    return broker + RISK_SUFFIX


def risk_acl_section(broker: str) -> str:
    """The ACL section of ``broker``'s risk user: its drop copy read, and no order entry,
    presence or execution reports (the deny lines beat the ``%u`` patterns every user
    gets, so it cannot trade even under its own name)."""
    return (f"\n# {broker}'s risk/clearing user: reads only {broker}'s drop copy.\n"
            f"user {risk_user(broker)}\n"
            "topic deny tokenbook/v1/orders/#\n"
            "topic deny tokenbook/v1/presence/#\n"
            "topic deny tokenbook/v1/exec/#\n"
            "topic deny tokenbook/v1/requests/#\n"
            f"topic read tokenbook/v1/dropcopy/{broker}\n")


# ---------------------------------------------------------------------- password files
def new_password(nbytes: int = 24) -> str:
    """A random password: ``nbytes`` bytes from the OS CSPRNG, URL-safe base64."""
    return secrets.token_urlsafe(nbytes)


def hash_password(password: str, *, iterations: int = 101, salt: bytes | None = None) -> str:
    """A mosquitto 2 password-file hash: ``$7$iterations$salt$pbkdf2-sha512`` (base64).

    The format ``mosquitto_passwd`` writes (12-byte salt, 64-byte PBKDF2-HMAC-SHA512
    digest); mosquitto reads the iteration count from the line itself.
    """
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def _private_file(path: Path) -> int:
    """Open ``path`` for writing, created/truncated with mode 0600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)                 # an existing file keeps its mode otherwise
    return fd


def write_password_file(path: str | os.PathLike, users: dict[str, str], *,
                        mosquitto_passwd: str | None = "auto") -> str:
    """Write a mosquitto password file for ``users`` (name -> password), mode 0600.

    With ``mosquitto_passwd`` ("auto": found on PATH) each user is added with
    ``mosquitto_passwd -b``; without the binary (or ``None``) the hashes are computed
    here in the same format. Returns "mosquitto_passwd" or "pbkdf2" (what was used).
    """
    path = Path(path)
    for name in users:
        if not valid_user(name):
            raise ValueError(f"user name {name!r} is not a valid topic segment")
    binary = shutil.which("mosquitto_passwd") if mosquitto_passwd == "auto" else mosquitto_passwd
    os.close(_private_file(path))                       # empty, owner-only
    if binary:
        for name, password in users.items():
            subprocess.run([binary, "-b", str(path), name, password], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=30)
        os.chmod(path, 0o600)
        return "mosquitto_passwd"
    with os.fdopen(_private_file(path), "w") as f:
        for name, password in users.items():
            f.write(f"{name}:{hash_password(password)}\n")
    return "pbkdf2"


def write_credentials(path: str | os.PathLike, users: dict[str, str]) -> None:
    """Write ``user:password`` lines to ``path``, readable by its owner only (0600)."""
    with os.fdopen(_private_file(Path(path)), "w") as f:
        f.write("# tokenbook MQTT credentials (user:password); keep private, hand each\n"
                "# broker only its own line. Generated by scripts/make-credentials.\n")
        for name, password in users.items():
            f.write(f"{name}:{password}\n")


def read_credentials(path: str | os.PathLike) -> dict[str, str]:
    """``{user: password}`` from a credentials file; warns if others may read it."""
    path = Path(path)
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("credentials file %s is readable by others (mode %o); chmod 600 it",
                    path, stat.S_IMODE(mode))
    users: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, password = line.partition(":")
        if not sep or not valid_user(name) or not password:
            raise ValueError(f"{path}:{n}: expected user:password")
        users[name] = password
    return users


def load_credentials(path: str | os.PathLike, username: str | None = None) -> tuple[str, str]:
    """``(user, password)`` from a credentials file: ``username``'s line, or the only one."""
    users = read_credentials(path)
    if username is None:
        if len(users) != 1:
            raise ValueError(f"{path} holds {len(users)} users: say which one (--username)")
        return next(iter(users.items()))
    if username not in users:
        raise ValueError(f"no user {username!r} in {path}")
    return username, users[username]


# ---------------------------------------------------------------------- client side
def client_options(*, username: str | None = None, password: str | None = None,
                   credentials: str | os.PathLike | None = None,
                   tls_ca: str | os.PathLike | None = None,
                   tls_cert: str | os.PathLike | None = None,
                   tls_key: str | os.PathLike | None = None) -> dict:
    """Extra ``aiomqtt.Client`` arguments (``mqtt_options`` of Gateway and BrokerClient).

    ``credentials``: a credentials file (``username`` picks the line; a file with one line
    needs none). ``password`` without a file is taken as given. ``tls_ca``: the CA file
    that signed the broker's certificate; TLS then verifies the certificate chain and the
    host name (no insecure mode). ``tls_cert``/``tls_key``: a client certificate, if the
    listener asks for one.
    """
    opts: dict = {}
    if credentials is not None:
        if password is not None:
            raise ValueError("give a password or a credentials file, not both")
        username, password = load_credentials(credentials, username)
    elif password is not None and username is None:
        raise ValueError("a password needs a username")
    if username is not None:
        if not valid_user(username):
            raise ValueError(f"user name {username!r} is not a valid topic segment")
        opts["username"] = username
        if password is not None:
            opts["password"] = password
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("a client certificate needs both tls_cert and tls_key")
    if tls_ca is not None or tls_cert is not None:
        import ssl

        import aiomqtt
        for f in (tls_ca, tls_cert, tls_key):
            if f is not None and not os.path.isfile(f):
                raise FileNotFoundError(f"TLS file not found: {f}")
        opts["tls_params"] = aiomqtt.TLSParameters(
            ca_certs=str(tls_ca) if tls_ca is not None else None,
            certfile=str(tls_cert) if tls_cert is not None else None,
            keyfile=str(tls_key) if tls_key is not None else None,
            cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return opts


def add_client_arguments(parser) -> None:
    """``--username``, ``--credentials``, ``--tls-ca``, ``--tls-cert``, ``--tls-key``."""
    g = parser.add_argument_group("MQTT authentication and TLS")
    g.add_argument("--username", help="MQTT user name (picks the line of --credentials)")
    g.add_argument("--credentials", metavar="FILE",
                   help="credentials file (user:password lines, scripts/make-credentials)")
    g.add_argument("--tls-ca", metavar="FILE",
                   help="CA certificate of the broker's TLS listener: connect over TLS")
    g.add_argument("--tls-cert", metavar="FILE", help="client certificate (with --tls-key)")
    g.add_argument("--tls-key", metavar="FILE", help="client private key")


def options_from_args(args, default_username: str | None = None) -> dict:
    """``client_options`` from the flags of ``add_client_arguments``."""
    username = args.username
    if username is None and args.credentials:
        users = read_credentials(args.credentials)
        username = default_username if default_username in users else None
    if args.username is not None and not args.credentials:
        raise ValueError("--username needs --credentials (the password is read from it)")
    return client_options(username=username, credentials=args.credentials,
                          tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)


def probe_options_from_args(args) -> dict | None:
    """The options of the engine's check for another engine (``GatewayConfig.
    probe_options``): the standby user of ``--credentials`` (with the same TLS flags), or
    None without a credentials file (the check then connects like the engine, under a
    throwaway client id). ValueError if the file has no standby user."""
    if not args.credentials:
        return None
    users = read_credentials(args.credentials)
    if STANDBY_USER not in users:
        raise ValueError(f"{args.credentials} has no {STANDBY_USER} line: the engine checks "
                         f"as that user that no other engine serves the broker (run "
                         f"scripts/make-credentials again, or add the user)")
    return client_options(username=STANDBY_USER, password=users[STANDBY_USER],
                          tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)


# ---------------------------------------------------------------------- broker side
@dataclass(frozen=True)
class ServerTLS:
    """A TLS listener: the broker's certificate and key; ``cafile`` and
    ``require_certificate`` to also ask clients for certificates signed by that CA."""
    certfile: str
    keyfile: str
    cafile: str | None = None
    require_certificate: bool = False
    min_version: str = "tlsv1.2"


def mosquitto_config(*, port: int, host: str | None = "127.0.0.1",
                     password_file: str | os.PathLike | None = None,
                     acl_file: str | os.PathLike | None = None,
                     tls: ServerTLS | None = None, allow_anonymous: bool | None = None,
                     persistence: bool = False, user: str | None = None,
                     header: str = "# generated by tokenbook") -> str:
    """The text of a mosquitto 2 config with one listener on ``host:port``.

    With ``password_file`` anonymous clients are refused (unless ``allow_anonymous``) and
    the client id is the user name (``use_username_as_clientid``: nobody can take over
    another user's session); ``acl_file`` restricts topics per user; ``tls`` makes the
    listener speak TLS only. Without any of these it is the open private broker of
    ``EmbeddedBroker``.
    """
    if allow_anonymous is None:
        allow_anonymous = password_file is None
    if not allow_anonymous and password_file is None:
        raise ValueError("refusing anonymous clients needs a password_file")
    lines = [header]
    if password_file is not None or acl_file is not None:
        lines.append("per_listener_settings false")
    if user is not None:
        lines.append(f"user {user}")
    lines.append(f"listener {port} {host}" if host else f"listener {port}")
    if password_file is not None and not allow_anonymous:
        # A listener option: the client id becomes the authenticated user name.
        lines.append("use_username_as_clientid true")
    if tls is not None:
        lines += [f"certfile {tls.certfile}", f"keyfile {tls.keyfile}",
                  f"tls_version {tls.min_version}"]
        if tls.cafile:
            lines.append(f"cafile {tls.cafile}")
        if tls.require_certificate:
            if not tls.cafile:
                raise ValueError("require_certificate needs the clients' cafile")
            lines.append("require_certificate true")
    lines.append(f"allow_anonymous {'true' if allow_anonymous else 'false'}")
    if password_file is not None:
        lines.append(f"password_file {password_file}")
    if acl_file is not None:
        lines.append(f"acl_file {acl_file}")
    lines += [
        f"persistence {'true' if persistence else 'false'}",
        # No log file. Errors and warnings go to stderr, which is kept in the private
        # folder (removed on stop): a taken port is only reported there.
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "max_queued_messages 100000",
        # The Receive Maximum the broker announces in CONNACK: how many QoS 1 publishes a
        # client may have unacknowledged (mosquitto's default, 20, makes the engine wait a
        # PUBACK round trip for every 20 reports and market-data messages; bench.native).
        f"max_inflight_messages {BROKER_RECEIVE_MAXIMUM}",
        # Small QoS 1 messages otherwise wait on Nagle + delayed ACK (~40 ms a hop).
        "set_tcp_nodelay true",
    ]
    for value in (password_file, acl_file) + ((tls.certfile, tls.keyfile, tls.cafile)
                                              if tls else ()):
        if value is not None and any(c in str(value) for c in "\n\r"):
            raise ValueError(f"bad path {value!r}")
    return "\n".join(lines) + "\n"


def write_mosquitto_config(path: str | os.PathLike, **kwargs) -> Path:
    """Write ``mosquitto_config(**kwargs)`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(mosquitto_config(**kwargs))
    return path
