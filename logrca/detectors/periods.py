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

"""Periods of activity in training logs.

A period is a burst of activity of one log source: a new one starts after
``gap`` seconds of log-time silence or, when ``length`` is given, after
``length`` seconds. Sequences of different sources (``Sequence.source``:
logs replayed or collected apart, e.g. two agents or two replayed runs)
never share a period, even when their clocks overlap.
"""


def split(seqs, gap, length=None):
    """Group sequences into periods.

    :param seqs: objects with ``times`` (log times, None allowed) and an
        optional ``source``.
    :returns: a list of periods, each a list of sequences, ordered by
        source (first seen first) and time. Sequences without any time
        are left out.
    """
    by_source = {}
    for seq in seqs:
        stamps = [t for t in seq.times if t is not None]
        if stamps:
            by_source.setdefault(getattr(seq, 'source', None), []).append(
                (min(stamps), max(stamps), seq))
    periods = []
    for spans in by_source.values():
        spans.sort(key=lambda item: item[0])
        start = end = None
        for first, last, seq in spans:
            if (start is None or first > end + gap
                    or (length is not None and first - start > length)):
                periods.append([])
                start, end = first, last
            else:
                end = max(end, last)
            periods[-1].append(seq)
    return periods
