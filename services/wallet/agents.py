"""The wallet projector: keeps one wallet per person from enrollment, record and verification
events."""

from __future__ import annotations

from collections.abc import Sequence

from ler.processing import Event, InvalidEvent, Processor
from ler.topics import ENROLLMENT, RECORDS, VERIFICATION
from services.wallet.domain import WalletChange, WalletRuleError, changes_for


class WalletProjector(Processor[WalletChange]):
    name = "wallet"
    topics = (ENROLLMENT, RECORDS, VERIFICATION)

    def changes(self, event: Event) -> Sequence[WalletChange]:
        try:
            return changes_for(event.event_type, event.record, event.message.key)
        except WalletRuleError as exc:
            raise InvalidEvent(str(exc)) from exc
