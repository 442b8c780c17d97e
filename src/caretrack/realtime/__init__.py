"""Live updates that never lose an event.

Services write events into the outbox inside their transaction
(`tx.emit(...)` -> `core.outbox.store.write_event`); after commit the relay publishes them
as a wake-up (Redis pub/sub, or in-process) and every web process pushes them to the
recipients' sockets on /ws/events. The database is the record: a client resumes from the
last sequence it saw and the server replays what it missed.
"""
