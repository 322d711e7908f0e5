"""Rich progress for training (loss, lr, examples/s, ETA), drawn on stderr."""

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

stderr = Console(stderr=True)


class FieldColumn(ProgressColumn):
    """Shows ``template.format(value)`` for a task field; blank for tasks without it (evaluation bars)."""

    def __init__(self, field: str, template: str):
        super().__init__()
        self.field, self.template = field, template

    def render(self, task) -> Text:
        value = task.fields.get(self.field)
        return Text("" if value is None else self.template.format(value))


def training_progress(disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        FieldColumn("loss", "loss {:.4f}"),
        FieldColumn("lr", "lr {:.2e}"),
        FieldColumn("speed", "{:.1f} ex/s"),
        TimeElapsedColumn(),
        FieldColumn("speed", "ETA"),
        TimeRemainingColumn(),
        console=stderr,
        disable=disable,
    )


def simple_progress(description: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )
