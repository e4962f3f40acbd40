"""One run scheduled on every Scrapyd host of ``scrapy.cfg`` (``scrapy pgy_schedule``).

Plain module (no Scrapy import): the hosts are the targets ``scrapyd-deploy -a`` deploys to
(the ``[deploy]`` section if it has a ``url``, named ``default``, and every ``[deploy:NAME]``,
each inheriting the ``[deploy]`` section's keys; ``${VAR}`` in a value is read from the
environment, as scrapyd-client does). Every host gets one job of ``note_detail`` with
``setting=PGY_RUN=<run>``: the queue (``PGY_QUEUE_URL``) and the token come from each host's
own environment, never from ``schedule.json``, because Scrapyd writes every job's arguments
to its log and shows them in ``listjobs.json``. The seed arguments go to the hosts named as
readers (all of them unless said otherwise); the others join the run as workers.

Before scheduling anything, every host is asked for the project's spiders: a host that is
down, refuses the credentials or lacks the egg stops the whole command with nothing
scheduled, so a run never starts on half the cluster by accident.
"""

from __future__ import annotations

import base64
import configparser
import json
import netrc
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pgy_spider.errors import UserError
from pgy_spider.queue.url import RUN_NAME

SPIDER = "note_detail"
DEFAULT_PROJECT = "pgy_spider"
SEED_ARGS = ("ids", "ids_file", "ids_url")
# Settings that carry a token: a job must read it on its host, never from schedule.json.
TOKEN_SETTINGS = frozenset({"PGY_TOKEN", "JUSTONEAPI_TOKEN"})
# Fields schedule.json keeps for itself: a spider argument of that name would be taken by it.
RESERVED_FIELDS = frozenset({"project", "spider", "setting", "jobid", "priority", "_version"})
TIMEOUT_S = 30.0

# Exit statuses of the command.
OK = 0
HOST_FAILED = 1  # a host was unreachable or refused: what was scheduled is said per host
USAGE = 2  # a mistake in the command or scrapy.cfg: nothing was sent


class EnvInterpolation(configparser.BasicInterpolation):
    """``${VAR}`` in scrapy.cfg values, from the environment (as scrapyd-deploy reads them),
    so that a Scrapyd password can stay out of the file."""

    def before_get(self, parser: Any, section: str, option: str, value: str, defaults: Any) -> str:
        value = super().before_get(parser, section, option, value, defaults)
        return os.path.expandvars(value)


@dataclass(frozen=True)
class Host:
    name: str
    url: str  # the Scrapyd base URL, without a trailing slash
    project: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def shown_url(self) -> str:
        """The URL as printed: never with credentials in it."""
        return strip_credentials(self.url)


@dataclass
class Outcome:
    host: Host
    job: str | None = None
    problem: str | None = None
    reads_seeds: bool = False


class HostError(Exception):
    """A Scrapyd host could not be reached or refused; the message is one line."""


def strip_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def read_hosts(sources: Iterable[str | Path]) -> list[Host]:
    """Every deploy target of the scrapy.cfg files ``sources`` (read in order, later ones
    winning, as Scrapy and scrapyd-deploy read them)."""
    cfg = configparser.ConfigParser(interpolation=EnvInterpolation())
    try:
        cfg.read([str(s) for s in sources], encoding="utf-8")
        base = dict(cfg.items("deploy")) if cfg.has_section("deploy") else {}
        targets: dict[str, dict[str, str]] = {}
        if "url" in base:
            targets["default"] = base
        for section in cfg.sections():
            if section.startswith("deploy:"):
                targets[section.removeprefix("deploy:")] = {**base, **dict(cfg.items(section))}
    except (configparser.Error, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"scrapy.cfg cannot be read: {first}") from None
    hosts = []
    for name, target in targets.items():
        url = target.get("url", "").strip()
        if not url:
            raise UserError(f"scrapy.cfg [deploy:{name}] has no url: add url = http://HOST:6800/")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise UserError(
                f"scrapy.cfg [deploy:{name}] url {strip_credentials(url)!r} is not an "
                "http(s) URL: use url = http://HOST:6800/"
            )
        username = target.get("username") or None
        password = target.get("password")
        if username is None:
            username, password = _netrc_login(url)
        hosts.append(
            Host(
                name=name,
                url=url.rstrip("/"),
                project=target.get("project") or DEFAULT_PROJECT,
                username=username,
                password=password,
            )
        )
    return hosts


def _netrc_login(url: str) -> tuple[str | None, str | None]:
    """A login for the URL's host in ~/.netrc, as scrapyd-deploy falls back to."""
    try:
        found = netrc.netrc().authenticators(urllib.parse.urlsplit(url).hostname or "")
    except (OSError, netrc.NetrcParseError):
        return None, None
    if not found:
        return None, None
    return found[0] or None, found[2]


def select(hosts: Sequence[Host], names: Sequence[str]) -> list[Host]:
    """The hosts named (all of them when ``names`` is empty), in scrapy.cfg's order."""
    if not hosts:
        raise UserError(
            "scrapy.cfg names no Scrapyd host: add one [deploy:NAME] section with a url "
            "per host (the hosts `scrapyd-deploy -a` deploys to)"
        )
    known = {h.name for h in hosts}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(
            f"no [deploy:NAME] section for {', '.join(unknown)} in scrapy.cfg; "
            f"known hosts: {', '.join(h.name for h in hosts)}"
        )
    return [h for h in hosts if not names or h.name in names]


def check_job(run: str | None, args: Mapping[str, str], settings: Mapping[str, str]) -> str:
    """The run name, once the job's parameters are safe to send to every host."""
    if not run:
        raise UserError("no run name: pass -s PGY_RUN=NAME (the same name resumes the run)")
    if not RUN_NAME.fullmatch(run):
        raise UserError(
            f"PGY_RUN {run!r} is not a run name: use letters, digits, '.', '_' and '-' "
            "(up to 100, starting with a letter or digit)"
        )
    for name in settings:
        if name in TOKEN_SETTINGS:
            raise UserError(
                f"-s {name}=... would be sent to Scrapyd, which writes job settings to its log: "
                "give each host its token in its environment (JUSTONEAPI_TOKEN or "
                "PGY_TOKEN_FILE)"
            )
        if name == "JOBDIR":
            raise UserError(
                "-s JOBDIR=... is refused in a run across hosts (its state is in Redis): "
                "resume by scheduling the same run again"
            )
    for kind, values in (("-s", settings), ("-a", args)):
        for name, value in values.items():
            if _has_password(value):
                raise UserError(
                    f"{kind} {name}=... holds a password and would be sent to Scrapyd, which "
                    f"writes job parameters to its log: put {name} in each host's environment"
                    if kind == "-s"
                    else f"{kind} {name}=... holds a password: Scrapyd would write it to its log"
                )
    for name in args:
        if name in RESERVED_FIELDS:
            raise UserError(f"-a {name}=... is not a spider argument schedule.json can carry")
    return run


def _has_password(value: str) -> bool:
    if "://" not in value:
        return False
    for part in value.split(","):  # ids_file/ids may list several
        try:
            if urllib.parse.urlsplit(part.strip()).password:
                return True
        except ValueError:
            continue
    return False


def schedule_fields(
    host: Host, run: str, args: Mapping[str, str], settings: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The ``schedule.json`` fields of one host's job."""
    fields = [("project", host.project), ("spider", SPIDER), ("setting", f"PGY_RUN={run}")]
    fields += [("setting", f"{k}={v}") for k, v in settings.items() if k != "PGY_RUN"]
    fields += list(args.items())
    return fields


class Scrapyd:
    """Scrapyd's JSON API on one host, with its basic auth; errors are HostError lines."""

    def __init__(self, host: Host, timeout: float = TIMEOUT_S) -> None:
        self.host = host
        self.timeout = timeout

    def call(self, endpoint: str, data: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
        url = f"{self.host.url}/{endpoint}"
        body = None
        if data is not None and endpoint == "listspiders.json":
            url += "?" + urllib.parse.urlencode(data)
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(url, data=body)
        if self.host.username is not None:
            login = f"{self.host.username}:{self.host.password or ''}".encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(login).decode())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            with exc:  # it holds the open response
                pass
            hint = (
                ": check username/password of its [deploy] section"
                if exc.code in (401, 403)
                else ""
            )
            raise HostError(f"HTTP {exc.code} {exc.reason} from {endpoint}{hint}") from None
        except urllib.error.URLError as exc:
            raise HostError(f"cannot reach it ({_reason(exc.reason)})") from None
        except TimeoutError:
            raise HostError(f"no answer within {self.timeout:.0f}s") from None
        except OSError as exc:
            raise HostError(f"cannot reach it ({_reason(exc)})") from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise HostError(
                f"{endpoint} answered something else than JSON: {text[:80]!r}"
            ) from None
        if not isinstance(answer, dict):
            raise HostError(f"{endpoint} answered {text[:80]!r}")
        if answer.get("status") != "ok":
            message = str(answer.get("message") or answer).strip().splitlines()
            raise HostError(f"{endpoint} refused: {message[-1] if message else answer}")
        return answer

    def check_spider(self) -> None:
        answer = self.call("listspiders.json", [("project", self.host.project)])
        if SPIDER not in answer.get("spiders", []):
            raise HostError(
                f"project {self.host.project!r} has no spider {SPIDER}: deploy it "
                "(scrapyd-deploy -a)"
            )

    def schedule(self, fields: Sequence[tuple[str, str]]) -> str:
        answer = self.call("schedule.json", fields)
        job = answer.get("jobid")
        if not isinstance(job, str) or not job:
            raise HostError(f"schedule.json gave no job id: {answer}")
        return job


def _reason(reason: object) -> str:
    text = str(getattr(reason, "strerror", None) or reason)
    return text.splitlines()[0] if text else type(reason).__name__


def schedule_run(
    hosts: Sequence[Host],
    run: str,
    args: Mapping[str, str],
    settings: Mapping[str, str],
    readers: Sequence[str] = (),
    *,
    timeout: float = TIMEOUT_S,
) -> list[Outcome]:
    """Check every host, then schedule one job per host (the seed arguments to the readers);
    nothing is scheduled unless every host passed the check."""
    seed_args = {k: v for k, v in args.items() if k in SEED_ARGS}
    other_args = {k: v for k, v in args.items() if k not in SEED_ARGS}
    outcomes = [
        Outcome(h, reads_seeds=bool(seed_args) and (not readers or h.name in readers))
        for h in hosts
    ]
    for outcome in outcomes:
        try:
            Scrapyd(outcome.host, timeout).check_spider()
        except HostError as exc:
            outcome.problem = str(exc)
    if any(o.problem for o in outcomes):
        for outcome in outcomes:
            if outcome.problem is None:
                outcome.problem = "not scheduled: another host failed its check"
        return outcomes
    for outcome in outcomes:
        job_args = {**other_args, **(seed_args if outcome.reads_seeds else {})}
        fields = schedule_fields(outcome.host, run, job_args, settings)
        try:
            outcome.job = Scrapyd(outcome.host, timeout).schedule(fields)
        except HostError as exc:
            outcome.problem = str(exc)
    return outcomes


def report(outcomes: Sequence[Outcome], run: str, out: TextIO, err: TextIO) -> int:
    """One line per host (stdout when scheduled, stderr when not); the exit status."""
    for o in outcomes:
        where = f"{o.host.name} ({o.host.shown_url})"
        if o.job is not None:
            role = "reads seeds" if o.reads_seeds else "worker"
            print(f"{where}: scheduled job {o.job} of run {run} ({role})", file=out)
        else:
            print(f"error: {where}: {o.problem}", file=err)
    failed = [o for o in outcomes if o.job is None]
    if not failed:
        return OK
    done = [o.host.name for o in outcomes if o.job is not None]
    if done:
        names = ",".join(o.host.name for o in failed)
        print(
            f"error: run {run} is scheduled on {', '.join(done)} only: once the others are "
            f"fixed, schedule it on them with --hosts {names}",
            file=err,
        )
    return HOST_FAILED


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict, or one line saying which is malformed."""
    pairs: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"{option} {item!r} is not NAME=VALUE")
        pairs[name.strip()] = value
    return pairs


def split_names(values: Iterable[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]
