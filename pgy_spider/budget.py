"""The spending budget: how many billable answers a job may still receive.

The download handler reserves one unit at the moment of sending (:meth:`Budget.reserve`)
and the API middleware settles it when the answer says whether the call was billable
(:meth:`Budget.settle`). A call that timed out after it was sent may have been billed
upstream: it is settled as billable.

:class:`Budget` is the interface a durable or shared backend implements a second time;
:class:`UnlimitedBudget` is the budget of a run without a cap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Budget(ABC):
    @abstractmethod
    async def reserve(self) -> bool:
        """Reserve one call before sending it; False when the budget is spent."""

    @abstractmethod
    def settle(self, *, billable: bool) -> None:
        """The reserved call was answered: spend the unit, or give it back."""

    @property
    @abstractmethod
    def spent(self) -> int:
        """Billable answers so far (in this job)."""

    @property
    @abstractmethod
    def limit(self) -> int:
        """The cap; 0 = none."""


class UnlimitedBudget(Budget):
    def __init__(self) -> None:
        self._spent = 0

    async def reserve(self) -> bool:
        return True

    def settle(self, *, billable: bool) -> None:
        if billable:
            self._spent += 1

    @property
    def spent(self) -> int:
        return self._spent

    @property
    def limit(self) -> int:
        return 0
