"""The verification service's stream processors: the verifier and the SLA clock."""

from __future__ import annotations

from collections.abc import Sequence

from ler.processing import Event, InvalidEvent, Processor
from ler.topics import ENROLLMENT, RECORDS, VERIFICATION
from services.verification import sla
from services.verification.domain import VerificationChange, VerificationRuleError, changes_for


class Verifier(Processor[VerificationChange]):
    """Routes each submitted record by the policy: issued at once, or queued for review."""

    name = "verification"
    topics = (ENROLLMENT, RECORDS)

    def changes(self, event: Event) -> Sequence[VerificationChange]:
        try:
            return changes_for(event.event_type, event.record, event.message.key)
        except (VerificationRuleError, KeyError) as exc:
            raise InvalidEvent(f"{event.event_type}: {exc}") from exc


class SlaTracker(Processor[sla.SlaChange]):
    """Opens and closes processing-time items; every event advances its partition's clock."""

    name = "sla"
    topics = (RECORDS, VERIFICATION)

    def changes(self, event: Event) -> Sequence[sla.SlaChange]:
        try:
            items = sla.changes_for(event.event_type, event.record)
        except KeyError as exc:
            raise InvalidEvent(f"{event.event_type}: missing field {exc}") from exc
        message = event.message
        time = sla.PartitionTime(message.topic, message.partition, event.record["occurred_at"])
        return [time, *items]
