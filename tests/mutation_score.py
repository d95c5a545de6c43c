"""Print the mutation score per module from `mutmut results --all true` (make mutation).

Usage: mutmut results --all true | python mutation_score.py GLOB...
Only mutants matching a GLOB count; the availability policy (the functions that decide how
many pods must stay up, and the PodDisruptionBudget) is shown apart from its modules as well.
"""

from __future__ import annotations

import fnmatch
import sys
from collections import Counter, defaultdict

AVAILABILITY = ("resilient_operator.policy.conditions.x_required_available",
                "resilient_operator.policy.conditions.x_pdb_problem",
                "resilient_operator.builders.children.x_pod_disruption_budget")


def main(globs: list[str]) -> None:
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    for line in sys.stdin:
        name, _, status = line.strip().partition(": ")
        if not name or (globs and not any(fnmatch.fnmatch(name, g) for g in globs)):
            continue
        module = name.split(".x_")[0].split(".xǁ")[0]
        by_group[module][status] += 1
        if name.startswith(AVAILABILITY):
            by_group["availability policy"][status] += 1
    for group, counts in sorted(by_group.items()):
        total = sum(counts.values())
        others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        print(f"{group:45} {counts['killed']:4} / {total:4} killed   {others}")


if __name__ == "__main__":
    main(sys.argv[1:])
