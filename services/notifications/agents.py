"""The two stream processors of the notifications service."""

from __future__ import annotations

from collections.abc import Sequence

from ler.processing import Event, InvalidEvent, Processor
from ler.topics import ENROLLMENT, RECORDS, SLA, VERIFICATION
from services.notifications.domain import (
    NotificationChange,
    NotificationRuleError,
    notification_changes,
)
from services.notifications.feed import FeedChange, FeedRuleError, feed_changes


class NotificationsProcessor(Processor[NotificationChange]):
    """Turns decisions, appeals and SLA breaches into messages and webhook deliveries."""

    name = "notifications"
    topics = (ENROLLMENT, RECORDS, VERIFICATION, SLA)

    def changes(self, event: Event) -> Sequence[NotificationChange]:
        try:
            return notification_changes(event.event_type, event.record, event.message.key)
        except (NotificationRuleError, KeyError) as exc:
            raise InvalidEvent(f"{event.event_type}: {exc}") from exc


class PartnerFeedProcessor(Processor[FeedChange]):
    """Keeps each consenting person's coarse facts and publishes them to partners' feeds."""

    name = "partner_feed"
    topics = (ENROLLMENT, RECORDS, VERIFICATION)

    def changes(self, event: Event) -> Sequence[FeedChange]:
        try:
            return feed_changes(event.event_type, event.record, event.message.key)
        except (FeedRuleError, KeyError) as exc:
            raise InvalidEvent(f"{event.event_type}: {exc}") from exc
