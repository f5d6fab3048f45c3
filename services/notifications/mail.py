"""E-mail: templates as files, the message context, and the sender that works through the
"to send" queue after commit (SMTP, or a local mbox file in the embedded mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import mailbox
import random
import smtplib
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from string import Template
from typing import Any

from services.notifications.domain import (
    NOTICE_KINDS,
    REASON_TEXT,
    SUSPENSION_TEXT,
    retry_delay,
    wants,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Attempt, NotificationsRepo

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
TITLE_WAIT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """``<kind>.txt`` (first line ``Subject: ...``, a blank line, the body) and ``<kind>.html``."""

    def __init__(self, root: Path = TEMPLATES) -> None:
        self.root = root
        self._parts: dict[str, tuple[Template, Template, Template]] = {}
        for kind in NOTICE_KINDS:
            text = (root / f"{kind}.txt").read_text(encoding="utf-8")
            first, _, body = text.partition("\n\n")
            if not first.startswith("Subject: "):
                raise ValueError(f"{root / kind}.txt: the first line must be 'Subject: ...'")
            markup = (root / f"{kind}.html").read_text(encoding="utf-8")
            self._parts[kind] = (
                Template(first.removeprefix("Subject: ").strip()),
                Template(body),
                Template(markup),
            )

    def render(self, kind: str, context: Mapping[str, str]) -> Rendered:
        subject, text, markup = self._parts[kind]
        escaped = {k: html.escape(v) for k, v in context.items()}
        return Rendered(
            subject=" ".join(subject.substitute(context).split())[:300],
            text=text.substitute(context),
            html=markup.substitute(escaped),
        )


def notice_context(
    kind: str,
    context: Mapping[str, Any],
    given_name: str,
    record_title: str | None,
    settings: NotificationsSettings,
) -> dict[str, str]:
    """Every placeholder a template of this kind may use, as text."""
    record_id = str(context.get("record_id") or "")
    verification = settings.verification_url.rstrip("/")
    values = {
        "given_name": given_name,
        "record_title": record_title or "your record",
        "record_id": record_id,
        "wallet_url": settings.wallet_url.rstrip("/") + "/v1/wallets/",
        "appeal_url": f"{verification}/v1/records/{record_id}/appeals",
    }
    if kind == "record.verified":
        credential_id = str(context.get("credential_id") or "")
        values["credential_type"] = str(context.get("credential_type") or "credential")
        values["credential_url"] = f"{verification}/v1/credentials/{credential_id}"
    elif kind == "record.rejected":
        code = str(context.get("reason_code") or "other")
        values["reason_code"] = code
        values["reason_text"] = REASON_TEXT.get(code, code.replace("_", " "))
        values["note"] = str(context.get("note") or "none")
    elif kind == "credential.revoked":
        values["reason"] = str(context.get("reason") or "not given")
    elif kind in ("credential.suspended", "credential.suspension_lifted"):
        code = str(context.get("reason_code") or "other")
        values["reason_text"] = SUSPENSION_TEXT.get(code, code.replace("_", " "))
        values["note"] = str(context.get("note") or "none")
    elif kind == "appeal.decided":
        upheld = context.get("decision") == "upheld"
        values["decision_text"] = (
            "upheld: the earlier decision is reversed."
            if upheld
            else "denied: the earlier decision stands."
        )
        values["note"] = str(context.get("note") or "none")
    elif kind == "share.opened":
        values["audience"] = str(context.get("audience") or "a share link")
        values["opened_at"] = str(context.get("opened_at") or "recently")
    elif kind == "sla.breached":
        values["queue"] = str(context.get("queue") or "review").replace("_", " ")
        values["submitted_at"] = _when(context.get("submitted_at"))
        values["deadline"] = _when(context.get("deadline"))
    return values


def _age(created_at: datetime) -> float:
    created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    return (datetime.now(UTC) - created).total_seconds()


def _when(value: Any) -> str:
    text = str(value or "")
    return text[:16].replace("T", " ") + " UTC" if text else "unknown"


def compose(rendered: Rendered, to: str, sender: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Message-ID"] = make_msgid(idstring=message_id.replace("-", ""), domain="ler.localhost")
    message["X-LER-Message-Id"] = message_id
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


class Mailer(ABC):
    """Port: hands composed messages to a mail system."""

    @abstractmethod
    def send(self, messages: list[EmailMessage]) -> list[str | None]:
        """Send each message (blocking; run in a thread); one error text or None per message."""


class SmtpMailer(Mailer):
    def __init__(self, settings: NotificationsSettings) -> None:
        assert settings.smtp_host is not None
        self.settings = settings

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        host, port, timeout = s.smtp_host or "", s.smtp_port, s.smtp_timeout_seconds
        smtp: smtplib.SMTP
        if s.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
            if s.smtp_tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            smtp.login(s.smtp_username, password)
        return smtp

    def send(self, messages: list[EmailMessage]) -> list[str | None]:
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            return [f"SMTP connection failed: {type(exc).__name__}: {exc}"] * len(messages)
        errors: list[str | None] = []
        try:
            for message in messages:
                try:
                    smtp.send_message(message)
                    errors.append(None)
                except (OSError, smtplib.SMTPException) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
        return errors


class MboxMailer(Mailer):
    """The embedded default: appends to a local mbox file, never the network."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def send(self, messages: list[EmailMessage]) -> list[str | None]:
        box = mailbox.mbox(self.path)
        box.lock()
        try:
            for message in messages:
                box.add(message)
            box.flush()
        finally:
            box.unlock()
            box.close()
        return [None] * len(messages)


class EmailSender:
    """Works through queued messages: checks preferences, renders, sends, records the outcome."""

    def __init__(
        self,
        repo: NotificationsRepo,
        mailer: Mailer,
        settings: NotificationsSettings,
        templates: Templates | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.repo = repo
        self.mailer = mailer
        self.settings = settings
        self.templates = templates or Templates()
        self.rand = rand
        self.sent = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                done = await self.send_due()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("e-mail sender: %s: %s; retrying", type(exc).__name__, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if done:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval_ms / 1000):
                    await self._wake.wait()

    async def send_due(self, limit: int = 100) -> int:
        rows = await self.repo.messages.claim(limit, self.settings.smtp_timeout_seconds * 4 + 30)
        if not rows:
            return 0
        people = await self.repo.persons_for(r.person_id for r in rows)
        titles = await self.repo.record_titles(
            str(r.context.get("record_id")) for r in rows if r.context.get("record_id")
        )
        outcomes: list[Attempt] = []
        to_send: list[tuple[Any, Any, Any]] = []
        for row in rows:
            person = people.get(row.person_id)
            if person is None:
                # The person's enrollment arrives on another topic: wait for it a while.
                outcomes.append(self._failed(row, "no address known for this person yet"))
                continue
            events = dict(person.events or {})
            enabled = True if person.email_enabled is None else bool(person.email_enabled)
            if not wants(row.kind, enabled, events):
                outcomes.append(Attempt(row.message_id, ok=False, final_state="suppressed"))
                continue
            record_id = row.context.get("record_id")
            title = titles.get(str(record_id)) if record_id else None
            if record_id and title is None and _age(row.created_at) < TITLE_WAIT_SECONDS:
                # The record's own event comes on another topic and may not be here yet.
                outcomes.append(Attempt(row.message_id, ok=False, retry_in=0.5, counts=False))
                continue
            values = notice_context(row.kind, row.context, person.given_name, title, self.settings)
            rendered = self.templates.render(row.kind, values)
            message = compose(rendered, person.email, self.settings.smtp_from, row.message_id)
            to_send.append((row, person, message))
        if to_send:
            errors = await asyncio.to_thread(self.mailer.send, [m for _, _, m in to_send])
            for (row, person, message), error in zip(to_send, errors, strict=True):
                extra = {"subject": str(message["Subject"]), "to_address": person.email}
                if error is None:
                    outcomes.append(Attempt(row.message_id, ok=True, extra=extra))
                else:
                    failed = self._failed(row, error)
                    outcomes.append(
                        Attempt(
                            failed.id, False, error=error, retry_in=failed.retry_in, extra=extra
                        )
                    )
            self.sent += sum(1 for e in errors if e is None)
        await self.repo.messages.record(outcomes, "sent_at")
        return len(rows)

    def _failed(self, row: Any, error: str) -> Attempt:
        attempts = row.attempts + 1
        if attempts >= self.settings.email_max_attempts:
            return Attempt(row.message_id, ok=False, error=error)
        delay = retry_delay(attempts, 2.0, 600.0, self.rand())
        return Attempt(row.message_id, ok=False, error=error, retry_in=delay)
