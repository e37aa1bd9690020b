"""Named verification questions (核验事项): each reads a few fields of one dataset about one
subject and answers only true or false, so the consumer learns nothing else."""

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from tongban.core.errors import ValidationError
from tongban.core.ids import resident_id_validate

from .errors import ExchangeInputInvalid

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Question:
    name: str
    label: str | Promise
    dataset: str
    fields: tuple[str, ...]
    # Parameter name -> parser (raises ValueError or ValidationError with a reason).
    params: Mapping[str, Callable[[Any], Any]]
    answer: Callable[[Rows, Mapping[str, Any], dt.date], bool]

    def params_checked(self, given: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(self.params))
        missing = sorted(set(self.params) - set(given))
        if unknown or missing:
            raise ExchangeInputInvalid(
                _("This question takes exactly the parameters %(params)s.")
                % {"params": ", ".join(self.params) or "-"},
                field="params",
            )
        checked = {}
        for name, parse in self.params.items():
            try:
                checked[name] = parse(given[name])
            except (ValueError, TypeError, ValidationError):
                raise ExchangeInputInvalid(
                    _("Parameter %(name)s is not valid.") % {"name": name}, field=name
                ) from None
        return checked


def _text(value: Any) -> str:
    text = " ".join(str(value).split())
    if not text or len(text) > 200:
        raise ValueError("empty or too long")
    return text


def _years(value: Any) -> int:
    years = int(value)
    if not 0 <= years <= 150:
        raise ValueError("out of range")
    return years


def _license_valid(rows: Rows, params: Mapping[str, Any], today: dt.date) -> bool:
    return any(
        row["license_type"] == params["license_type"]
        and row["status"] == "valid"
        and (row["valid_until"] is None or row["valid_until"] >= today.isoformat())
        for row in rows
    )


def _registered_address(rows: Rows, params: Mapping[str, Any], today: dt.date) -> bool:
    return any(_text(row["address"] or "-") == params["address"] for row in rows)


def _legal_representative(rows: Rows, params: Mapping[str, Any], today: dt.date) -> bool:
    return any(row["legal_representative_id"] == params["resident_id"] for row in rows)


def _age_at_least(rows: Rows, params: Mapping[str, Any], today: dt.date) -> bool:
    for row in rows:
        if row["birth_date"]:
            born = dt.date.fromisoformat(row["birth_date"])
            age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
            return age >= params["years"]
    return False


def _receives_minimum_living(rows: Rows, params: Mapping[str, Any], today: dt.date) -> bool:
    return any(row["status"] == "正常保障" for row in rows)


QUESTIONS = {
    q.name: q
    for q in (
        Question(
            name="license_valid",
            label=_("Holds a valid license of this type"),
            dataset="license",
            fields=("license_type", "status", "valid_until"),
            params={"license_type": _text},
            answer=_license_valid,
        ),
        Question(
            name="registered_address",
            label=_("This is the person's registered address"),
            dataset="population",
            fields=("address",),
            params={"address": _text},
            answer=_registered_address,
        ),
        Question(
            name="legal_representative",
            label=_("This person is the company's legal representative"),
            dataset="legal_entity",
            fields=("legal_representative_id",),
            params={"resident_id": resident_id_validate},
            answer=_legal_representative,
        ),
        Question(
            name="age_at_least",
            label=_("The person is at least this old"),
            dataset="population",
            fields=("birth_date",),
            params={"years": _years},
            answer=_age_at_least,
        ),
        Question(
            name="minimum_living_recipient",
            label=_("The person receives the minimum living allowance"),
            dataset="minimum_living",
            fields=("status",),
            params={},
            answer=_receives_minimum_living,
        ),
    )
}


def question_get(name: str) -> Question:
    question = QUESTIONS.get(name)
    if question is None:
        raise ExchangeInputInvalid(
            _("Unknown verification question. Ask one of: %(names)s.")
            % {"names": ", ".join(QUESTIONS)},
            code="question_unknown",
        )
    return question
