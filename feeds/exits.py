"""Exit codes and one-line errors of the ``tokenbook`` command (README, "Exit codes").

Every failure of a command is one line on stderr and one of these codes; the helpers
turn a broker that cannot be reached or refuses the credentials into that one line.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from feeds.broker import parse_broker_url

# ---------------------------------------------------------------------- exit codes
EXIT_OK = 0             # done (also: watch's reader closed the pipe, `| head`)
EXIT_REFUSED = 1        # the command ran and the answer is no: admin refused, demo checks
EXIT_USAGE = 2          # bad arguments or configuration files (accounts, instruments, ...)
EXIT_BROKER = 3         # broker unreachable, refused the credentials, lost, or no reply
EXIT_ANOTHER_ENGINE = 4  # another engine serves this broker: refused to start, stepped down
EXIT_DATA = 5           # the data directory disagrees with the configuration, or is unusable
EXIT_FENCED = 6         # serve --journal: another engine appended to the stream (took over)
EXIT_INTERNAL = 70      # a bug: one line (the traceback with --log-level debug)
EXIT_INTERRUPTED = 130  # Ctrl-C (serve stops cleanly on Ctrl-C or SIGTERM once serving: 0)

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    done (watch: also when its reader closes the pipe)
  {EXIT_REFUSED}    the answer is no (admin: refused; demo: a check failed)
  {EXIT_USAGE}    bad arguments or configuration (options, accounts, instruments, credentials)
  {EXIT_BROKER}    MQTT broker unreachable, refused the credentials, lost, or no reply in time
  {EXIT_ANOTHER_ENGINE}    another engine serves this broker (serve refused to start, stepped down)
  {EXIT_DATA}    the data directory disagrees with the configuration, or cannot be used
  {EXIT_FENCED}    fenced: another engine took the replicated journal over (serve --journal)
  {EXIT_INTERNAL}   internal error (a bug: --log-level debug shows the traceback)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""
LOG_LEVELS = ("debug", "info", "warning", "error")


class CliError(Exception):
    """A failure the command reports as one line and an exit code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def os_error(what: str, exc: OSError) -> str:
    return f"cannot read {what} {exc.filename or ''}".rstrip() + f": {exc.strerror or exc}"


def broker_url(url: str) -> tuple[str, int]:
    try:
        return parse_broker_url(url)
    except ValueError as exc:
        raise CliError(EXIT_USAGE, f"--broker: {exc}") from None


def broker_error(url: str, exc: BaseException, user: str | None = None) -> CliError:
    """The one line for a broker that cannot be used."""
    from feeds.guard import CheckRefused
    who = f" as {user}" if user else ""
    if isinstance(exc, CheckRefused):
        return CliError(EXIT_BROKER, f"the MQTT broker at {url}: {exc}")
    if isinstance(exc, MqttConnectError):
        return CliError(EXIT_BROKER, f"the MQTT broker at {url} refused the connection{who}: "
                                     f"{exc} (check --credentials / --username)")
    return CliError(EXIT_BROKER, f"cannot reach the MQTT broker at {url}: {exc}")


async def reachable(url: str, host: str, port: int, options: dict | None = None,
                     timeout: float = 10.0) -> None:
    """Connect once and leave: CliError (exit 3) if the broker cannot be used."""
    from feeds import mqtt
    try:
        async with asyncio.timeout(timeout):
            async with mqtt.client(host, port, **(options or {})):
                pass
    except TimeoutError:
        raise CliError(EXIT_BROKER, f"no answer from the MQTT broker at {url} within "
                                    f"{timeout:g} s") from None
    except aiomqtt.MqttError as exc:
        raise broker_error(url, exc, (options or {}).get("username")) from None


@contextlib.contextmanager
def arguments_checked() -> Iterator[None]:
    """Operands and credential files as one usage line (exit 2)."""
    try:
        yield
    except OSError as exc:
        raise CliError(EXIT_USAGE, os_error("--credentials/TLS file", exc)) from None
    except ValueError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None


@contextlib.contextmanager
def engine_answers(url: str, timeout: float, options: dict, who: str = "the engine",
                   hint: str = "is it running? may this user send admin commands?"
                   ) -> Iterator[None]:
    """A command awaiting the engine's reply: no reply, or a broker that cannot be used,
    as one line (exit 3)."""
    try:
        yield
    except TimeoutError:
        raise CliError(EXIT_BROKER, f"no reply from {who} within {timeout:g} s "
                                    f"({hint})") from None
    except aiomqtt.MqttError as exc:
        raise broker_error(url, exc, options.get("username")) from None


def print_reply(reply, where: str = "") -> int:
    """The one line of an operator reply (``feeds.codec.AdminReply``) and its exit code."""
    seq = f" (sequence {reply.seq}{where})" if reply.accepted else ""
    print(f"{'accepted' if reply.accepted else 'REFUSED'}: {reply.text}{seq}", flush=True)
    return EXIT_OK if reply.accepted else EXIT_REFUSED
