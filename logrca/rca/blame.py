# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Which frame of a traceback to blame, learned from past failures.

A traceback names the code that raised, but the fault is not always
there: a module may only carry the error (an RPC serialiser handed a
``None`` context, a database wrapper checking its arguments, a decorator)
while the fault lies one or two callers up. :class:`BlameModel` learns
this from past failures with known causes (knowledge-base entries of
kind ``failure`` or ``feedback`` that record the distinct project modules
of their first traceback, deepest first): for each module, how often it
appeared in such a traceback and how often the fault was in it, and, over
all failures, how often the fault was in the module at each position.
The blame of a module at position ``p`` of a new traceback is the
smoothed rate ``(faulty + a * base(p)) / (seen + a)``: a module never seen
in a past traceback gets the positional base rate, one often seen and
never faulty gets little.
"""

import collections

#: Distinct modules of a traceback looked at (deepest first).
MAX_POSITIONS = 12


def distinct_modules(frames):
    """Distinct modules of ``(module, function)`` frames, order kept."""
    mods = []
    for frame in frames:
        module = frame[0] if isinstance(frame, (list, tuple)) else frame
        if module and module not in mods:
            mods.append(module)
    return mods


class BlameModel:
    """Fault rates of modules by their place in a traceback.

    :param smoothing: weight ``a`` of the positional base rate.
    """

    def __init__(self, smoothing=1.0):
        self.smoothing = smoothing
        self.seen = collections.Counter()
        self.faulty = collections.Counter()
        self.at_position = collections.Counter()
        self.tracebacks = 0

    def fit(self, examples):
        """Learn from ``(modules deepest first, faulty module)`` pairs."""
        for modules, faulty in examples:
            modules = distinct_modules(modules)[:MAX_POSITIONS]
            if not modules or not faulty:
                continue
            self.tracebacks += 1
            for pos, module in enumerate(modules):
                self.seen[module] += 1
                if module == faulty:
                    self.faulty[module] += 1
                    self.at_position[pos] += 1
        return self

    @classmethod
    def from_entries(cls, entries, smoothing=1.0):
        """A model of the knowledge-base entries that record frames."""
        return cls(smoothing).fit(
            (e.frames, e.module) for e in entries
            if getattr(e, 'frames', None) and e.module)

    def __bool__(self):
        return self.tracebacks > 0

    def base_rate(self, position):
        """Share of past failures whose fault was at ``position``."""
        if not self.tracebacks:
            return 0.0
        return self.at_position[position] / self.tracebacks

    def blame(self, module, position):
        """Smoothed rate of the fault being in ``module`` at ``position``."""
        a = self.smoothing
        return ((self.faulty[module] + a * self.base_rate(position))
                / (self.seen[module] + a))

    def rank(self, modules):
        """``(module, blame, position)`` for a traceback, most blamed first.

        Ties keep the deeper module first.
        """
        mods = distinct_modules(modules)[:MAX_POSITIONS]
        scored = [(m, self.blame(m, p), p) for p, m in enumerate(mods)]
        return sorted(scored, key=lambda t: (-t[1], t[2]))
