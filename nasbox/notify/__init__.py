"""Notifications (CONTRACT 5): one module per kind of target, each with the same interface

    send(target: NotifyTarget, event: Event, config: Config) -> None

which delivers or raises. deliver() picks the targets, retries, logs failures and never
raises: a failed delivery never fails or blocks a job beyond its bounded retries."""
