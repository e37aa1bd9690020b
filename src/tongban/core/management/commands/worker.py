"""`tongban worker`: run the queued background tasks (django-tasks, database backend) and
queue the periodic ones (settings.TONGBAN_SCHEDULE) when they are due.

tongban worker            run until SIGTERM or Ctrl-C, which stop it after the current task
                          (Ctrl-C twice: at once)
tongban worker --once     queue what is due, run everything queued, then exit

Any number of workers may run side by side: each task is claimed by one of them, and each
due time of the schedule is queued once."""

import logging
import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.crypto import get_random_string
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.management.commands.db_worker import Worker

from tongban.core.schedule import schedule_all, schedule_enqueue_due

# How long a stop signal may wait while the worker is idle.
IDLE_STEP_SECONDS = 0.2


class Command(BaseCommand):
    help = "Run queued background tasks and queue the periodic ones when they are due."
    worker: Worker
    running: bool

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="queue what is due, run every queued task, then exit",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="seconds to wait when there is nothing to do (default: 1)",
        )

    def handle(
        self, *args: Any, once: bool, interval: float, verbosity: int, **options: Any
    ) -> None:
        backend = task_backends[DEFAULT_TASK_BACKEND_ALIAS]
        if not isinstance(backend, DatabaseBackend):
            raise CommandError(
                f"the worker runs tasks of the database backend; TASKS['default'] is "
                f"{type(backend).__name__}"
            )
        if interval <= 0:
            raise CommandError("--interval must be more than 0 seconds")
        schedule = schedule_all()  # a malformed schedule stops the worker here
        self._logging(verbosity)
        # Batch mode: each call of run() takes tasks until the queue is empty, so the
        # schedule is looked at between tasks and whenever the worker is idle.
        self.worker = Worker(
            queue_names=["*"],
            interval=interval,
            batch=True,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
        )
        self.running = True
        handlers = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        if verbosity:
            names = ", ".join(f"{entry.name} ({entry.cron})" for entry in schedule) or "none"
            self.stdout.write(f"worker {self.worker.worker_id} started; schedule: {names}")
        try:
            while self.running:
                for slot in schedule_enqueue_due():
                    if verbosity:
                        self.stdout.write(f"queued {slot}")
                self.worker.run()
                if once:
                    break
                self._idle(interval)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if verbosity:
            self.stdout.write("worker stopped")

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.running:
            # Ctrl-C twice stops at once (the task running now is recorded as failed); a
            # second SIGTERM — say from a script that also saw the Ctrl-C — changes nothing.
            if signum == signal.SIGINT:
                raise SystemExit(1)
            return
        self.stderr.write(f"{signal.strsignal(signum)}: stopping after the current task")
        self.running = False
        self.worker.running = False

    def _idle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.running and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, IDLE_STEP_SECONDS))

    def _logging(self, verbosity: int) -> None:
        # Each task's start and end at the default verbosity; the backend's own messages
        # ("starting", "queue empty" on every pass) only at -v 2.
        task_level = logging.WARNING if verbosity == 0 else logging.INFO
        logging.getLogger("django_tasks").setLevel(task_level)
        backend_level = logging.DEBUG if verbosity >= 2 else logging.WARNING
        logging.getLogger("django_tasks_db").setLevel(backend_level)
