"""Stream and key names. A namespace prefix lets several deployments (or tests) share one Redis."""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_GROUP = "projector"


@dataclass(frozen=True, slots=True)
class Names:
    namespace: str = ""

    def command_stream(self, source: str) -> str:
        return f"{self.namespace}cmd.{source}"

    @staticmethod
    def command_group(source: str) -> str:
        return f"{source}-workers"

    @property
    def events(self) -> str:
        return f"{self.namespace}events"

    @property
    def dlq(self) -> str:
        return f"{self.namespace}dlq"

    def source_key(self, source: str, what: str) -> str:
        """Keys shared by every worker of one source, e.g. Yahoo's request `budget`."""
        return f"{self.namespace}source:{source}:{what}"

    def job_key(self, job_id: str, what: str) -> str:
        """Per-job keys: `seq` (event counter), `submitted`, `owner`, `cancel`, `queued` (the
        submitted event, for the API until the projector has the job)."""
        return f"{self.namespace}job:{job_id}:{what}"
