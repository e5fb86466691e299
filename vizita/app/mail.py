"""Mailing the report: one message, the HTML page with a plain-text part, sent over
SMTP with STARTTLS and a login (the standard library's smtplib and email: nothing
here needs more).

The server's certificate and host name are always checked (the system's CAs, plus
`smtp_ca_file` for a relay with a private CA). A password is never sent over a
connection that is not encrypted, and never logged.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import structlog

from vizita.app.errors import AppError
from vizita.contract.settings import Settings, env_name

log = structlog.get_logger(__name__)


class MailError(AppError):
    """The report could not be mailed: settings missing, or the server refused."""


def check_mail_settings(settings: Settings) -> None:
    """Fail before any work when `--send` cannot send."""
    missing = [
        name
        for name, value in (
            ("smtp_host", settings.smtp_host),
            ("smtp_sender", settings.smtp_sender),
            ("smtp_recipients", settings.smtp_recipients),
        )
        if not value
    ]
    if missing:
        names = ", ".join(f"{name} ({env_name(name)})" for name in missing)
        raise MailError(f"--send needs {names}")
    if settings.smtp_user and settings.smtp_password is None:
        raise MailError(f"smtp_user is set but {env_name('smtp_password')} is not")
    if settings.smtp_user and not settings.smtp_starttls:
        raise MailError("refusing to send the SMTP password without STARTTLS")


def report_message(
    settings: Settings, subject: str, html: str, text: str, now: datetime
) -> EmailMessage:
    """multipart/alternative: the plain text first, the HTML as the preferred part."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.smtp_sender or ""
    message["To"] = ", ".join(settings.smtp_recipients)
    message["Date"] = format_datetime(now)
    domain = (settings.smtp_sender or "vizita.invalid").rpartition("@")[2]
    message["Message-ID"] = make_msgid("vizita-report", domain=domain)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def send_message(settings: Settings, message: EmailMessage) -> None:
    """Send `message` to `smtp_recipients`; MailError (one line, no secret) otherwise."""
    check_mail_settings(settings)
    host, port = settings.smtp_host or "", settings.smtp_port
    try:
        refused = _deliver(settings, message)
    except smtplib.SMTPException as exc:
        reason = _reason(exc)
        raise MailError(f"the mail server {host}:{port} refused the report: {reason}") from exc
    except OSError as exc:  # refused, unreachable, timed out, TLS failures (ssl.SSLError)
        raise MailError(f"cannot mail the report via {host}:{port}: {exc}") from exc
    if refused:
        raise MailError(f"the mail server refused {', '.join(sorted(refused))}; sent to the rest")
    log.info("report_sent", host=host, port=port, recipients=len(settings.smtp_recipients))


def _deliver(settings: Settings, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
    context = ssl.create_default_context(
        cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    )
    with smtplib.SMTP(
        settings.smtp_host or "", settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as server:
        server.ehlo()
        if settings.smtp_starttls:
            server.starttls(context=context)
            server.ehlo()
        if settings.smtp_user and settings.smtp_password is not None:
            server.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        recipients: Sequence[str] = settings.smtp_recipients
        return server.send_message(message, to_addrs=list(recipients))


def _reason(exc: smtplib.SMTPException) -> str:
    """The server's own words (its code and first line), never what was sent."""
    code, text = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", b"")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return f"{code} {first}" if code else first
