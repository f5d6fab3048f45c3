"""``ler dlq list|show|redrive``: the dead-letter topic for an operator (see ``ler.dlq``)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta

from ler.dlq import DeadLetter, DeadLetters, read_dead_letters, redrive
from ler.settings import KafkaSettings, load

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_time(value: str) -> datetime:
    """``--since``: an ISO 8601 time (UTC when it names no zone) or an age like 30m, 2h, 7d."""
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = relative.groups()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since: {value!r} is neither an ISO 8601 time nor an age like 30m, 2h or 7d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="list, show and redrive dead letters (ler.dlq.v1)")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser("list", help="dead letters, oldest first")
    listing.add_argument("--consumer", help="only this consumer's (wallet, verification, ...)")
    listing.add_argument("--since", type=since_time, help="ISO 8601 time or an age (30m, 2h, 7d)")
    listing.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="one dead letter: where it came from, headers, error")
    show.add_argument("id", help="the dead letter's id (from ler dlq list)")
    show.set_defaults(func=cmd_show)
    again = actions.add_parser(
        "redrive", help="republish dead letters to their original topics (once each; audited)"
    )
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="the dead letter's id")
    which.add_argument("--all", action="store_true", help="every dead letter not yet redriven")
    again.add_argument("--consumer", help="with --all: only this consumer's")
    again.add_argument("--by", help="who redrives, for the audit (default: the login name)")
    again.set_defaults(func=cmd_redrive)


def _state(known: DeadLetters, letter: DeadLetter) -> str:
    done = known.redriven_by(letter)
    if done is None:
        return "waiting"
    return f"redriven {done.at.isoformat(timespec='seconds')} by {done.by}"


def cmd_list(args: argparse.Namespace) -> int:
    known = asyncio.run(read_dead_letters(load(KafkaSettings)))
    letters = known.select(args.consumer, args.since)
    for d in letters:
        print(
            f"{d.id}  {d.recorded_at.isoformat(timespec='seconds')}  {d.consumer}  {d.reason}  "
            f"{d.topic}[{d.partition}]@{d.offset}  {d.event_type or '-'}  {_state(known, d)}  "
            f"{_short(d.error)}"
        )
    print(f"{len(letters)} dead letters", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    known = asyncio.run(read_dead_letters(load(KafkaSettings)))
    letter = known.find(args.id)
    if letter is None:
        print(f"ler dlq show: no dead letter with id {args.id}", file=sys.stderr)
        return 1
    for name, value in letter.summary().items():
        if name == "headers":
            print("headers:")
            for key, text in value.items():
                print(f"  {key}: {text}")
        else:
            print(f"{name}: {value}")
    print(f"state: {_state(known, letter)}")
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    if args.consumer and not args.all:
        print("ler dlq redrive: --consumer goes with --all", file=sys.stderr)
        return 2
    kafka = load(KafkaSettings)
    known = asyncio.run(read_dead_letters(kafka))
    if args.all:
        letters = known.select(args.consumer)
    else:
        found = known.find(args.id)
        if found is None:
            print(f"ler dlq redrive: no dead letter with id {args.id}", file=sys.stderr)
            return 1
        letters = [found]
    done = asyncio.run(redrive(kafka, letters, known, by=args.by))
    for letter, r, now in done:
        where = f"{r.topic}[{r.partition}]@{r.offset}"
        if now:
            print(f"{letter.id}: republished to {where}")
        else:
            print(f"{letter.id}: already redriven ({where}, {r.at.isoformat(timespec='seconds')})")
    print(
        f"{sum(1 for *_, now in done if now)} republished, {len(done)} dead letters",
        file=sys.stderr,
    )
    return 0


def _short(text: str, limit: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"
