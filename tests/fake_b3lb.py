"""b3lb's side of the load value: its fetch, its load formula and its choice of node.

Upstream: DE-IBH/b3lb at adfc4b02af5bbd50cd54066e71a599ec589f5a0f
- b3lb/rest/task/core.py check_node: ``get(node.load_base_url, timeout=5)``; for
  ``status_code == 200`` and a text containing ``'\\n'``: ``cpu_load =
  int(text.split('\\n')[0])``; any exception or other answer keeps the last value.
- b3lb/rest/models.py: load_base_url = B3LB_NODE_PROTOCOL + slug + "." + domain + "/" +
  B3LB_NODE_LOAD_ENDPOINT (b3lb/loadbalancer/constants.py: "https://", "b3lb/load");
  Node.load: −2 in maintenance, −1 with errors, else int(attendees·a + meetings·m +
  work_cpu) with work_cpu = Σ_{i=1}^{iterations−1} (cpu_load/10000)^i ·
  cpu_max / iterations; Cluster defaults a=1.0, m=30.0, iterations=6, cpu_max=5000.
- b3lb/rest/classes/api.py set_node_by_lowest_workload: lowest starts at 10000000; a
  node is a candidate when 0 <= load <= lowest; ties are picked at random (here: all
  tied nodes are returned).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import requests


@dataclass
class B3lbNode:
    slug: str
    load_url: str  # what load_base_url resolves to (here: the planner's route)
    attendees: int = 0
    meetings: int = 0
    cpu_load: int = 0
    has_errors: bool = False
    maintenance: bool = False

    def fetch_load(self, timeout: float = 5.0) -> None:
        """check_node's load part, line for line."""
        # b3lb: "except: # Do nothing and keep last cpu load value"
        with contextlib.suppress(Exception):
            response = requests.get(self.load_url, timeout=timeout)
            if response.status_code == 200 and response.text.find("\n") != -1:
                self.cpu_load = int(response.text.split("\n")[0])

    def load(
        self, a: float = 1.0, m: float = 30.0, iterations: int = 6, cpu_max: int = 5000
    ) -> int:
        if self.maintenance:
            return -2
        if self.has_errors:
            return -1
        work_cpu = 0.0
        if iterations > 0:
            for iteration in range(1, iterations):
                work_cpu += pow(float(self.cpu_load) / 10000.0, iteration)
            work_cpu = work_cpu * cpu_max / float(iterations)
        return int(self.attendees * a + self.meetings * m + work_cpu)


def lowest_workload(nodes: list[B3lbNode]) -> list[str]:
    """The nodes b3lb would pick from for a new meeting (set_node_by_lowest_workload)."""
    lowest = 10000000
    chosen: list[B3lbNode] = []
    for node in nodes:
        load = node.load()
        if 0 <= load <= lowest:
            if load == lowest:
                chosen.append(node)
            else:
                chosen, lowest = [node], load
    return [n.slug for n in chosen]
