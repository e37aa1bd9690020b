"""The two benchmark rules in OpenFisca-core, run by `bench_entitlements` in a separate
virtualenv (OpenFisca pins its own numpy and pytest, so it stays out of the project's):

    python _openfisca_rules.py POPULATION.parquet YYYY-MM-DD ROUNDS

reads the same synthetic population the project's evaluator swept (birth dates, division
codes, alive flags), sets it as the simulation's inputs (not timed), computes both rules
ROUNDS times on a fresh simulation each time (timed), and prints one JSON line: the best
seconds for both rules and each rule's eligible count (so the two sides can be checked to
agree). Division codes are given to OpenFisca as integers, its natural encoding for a
prefix test (an integer division), rather than as strings it would compare in Python."""

import datetime as dt
import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from openfisca_core.entities import build_entity
from openfisca_core.periods import MONTH
from openfisca_core.simulations import SimulationBuilder
from openfisca_core.taxbenefitsystems import TaxBenefitSystem
from openfisca_core.variables import Variable

Person = build_entity(
    key="person", plural="persons", label="Resident", doc="A resident", is_person=True
)


# OpenFisca names a variable by its class, hence the lower-case class names.
class birth(Variable):
    value_type = dt.date
    entity = Person
    definition_period = MONTH
    label = "Date of birth"


class division_code(Variable):
    value_type = int
    entity = Person
    definition_period = MONTH
    label = "Registered division code (GB/T 2260)"


class alive(Variable):
    value_type = bool
    entity = Person
    definition_period = MONTH
    label = "Alive"


class age(Variable):
    value_type = int
    entity = Person
    definition_period = MONTH
    label = "Age in whole years on the first day of the month"

    def formula(person, period):  # type: ignore[no-untyped-def]
        born = person("birth", period)
        start = period.start
        years = born.astype("datetime64[Y]").astype(int) + 1970
        months = born.astype("datetime64[M]").astype(int) % 12 + 1
        days = (born - born.astype("datetime64[M]")).astype(int) + 1
        later = (months > start.month) | ((months == start.month) & (days > start.day))
        return start.year - years - later


class elder_allowance(Variable):
    value_type = bool
    entity = Person
    definition_period = MONTH
    label = "高龄津贴: aged 80 or more, registered in 3701, alive"

    def formula(person, period):  # type: ignore[no-untyped-def]
        registered = person("division_code", period) // 100 == 3701
        return (person("age", period) >= 80) * registered * person("alive", period)


class senior_card(Variable):
    value_type = bool
    entity = Person
    definition_period = MONTH
    label = "老年优待证: aged 65 or more, registered in the province (37), alive"

    def formula(person, period):  # type: ignore[no-untyped-def]
        registered = person("division_code", period) // 10000 == 37
        return (person("age", period) >= 65) * registered * person("alive", period)


def main(path: str, on: str, rounds: int) -> None:
    table = pq.read_table(path)
    born = table["birth_date"].to_numpy().astype("datetime64[D]")
    division = table["division_code"].cast(pa.string()).to_numpy().astype(np.int64)
    living = table["alive"].to_numpy()
    system = TaxBenefitSystem([Person])
    system.add_variables(birth, division_code, alive, age, elder_allowance, senior_card)
    period = on[:7]
    best = float("inf")
    counts: dict[str, int] = {}
    for _ in range(rounds):
        builder = SimulationBuilder()
        builder.create_entities(system)
        builder.declare_person_entity("person", np.arange(len(born)))
        simulation = builder.build(system)
        simulation.set_input("birth", period, born)
        simulation.set_input("division_code", period, division)
        simulation.set_input("alive", period, living)
        started = time.perf_counter()
        elder = simulation.calculate("elder_allowance", period)
        senior = simulation.calculate("senior_card", period)
        best = min(best, time.perf_counter() - started)
        counts = {"elder_allowance": int(elder.sum()), "senior_card": int(senior.sum())}
    print(json.dumps({"seconds": best, "eligible": counts}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
