"""The progress bar long commands draw on stderr (a sweep over the population reports
`(what, done, total)` as it goes; stdout keeps the counts, for scripts)."""

from collections.abc import Callable

from django.core.management.base import OutputWrapper

WIDTH = 30


def progress_bar(stream: OutputWrapper) -> Callable[[str, int, int], None]:
    """A `progress(what, done, total)` callback redrawing one line, ended when done."""

    def progress(what: str, done: int, total: int) -> None:
        filled = WIDTH * done // total if total else WIDTH
        bar = "█" * filled + "·" * (WIDTH - filled)
        stream.write(f"\r{what:<20} {bar} {done}/{total}", ending="\n" if done == total else "")

    return progress
