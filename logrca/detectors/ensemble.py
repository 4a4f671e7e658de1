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

"""Ensemble: several detectors scored together, any one raising."""

import json
import math
import os

from oslo_log import log

from logrca.agent import pipeline
from logrca.detectors import artifact
from logrca.detectors import base
from logrca.detectors import learned as learned_mod

LOG = log.getLogger(__name__)


class EnsembleDetector(base.Detector):
    """Runs the drivers of ``[detectors] ensemble_members`` side by side.

    Every member scores every record; the ensemble returns what its
    members raise, at most one anomaly per session (the first). Members
    are loaded from their own artifacts under ``model_dir``, so the
    ensemble's artifact only names them. Calibration chooses the members'
    thresholds together, for the target false-alarm rate of the union
    (see :meth:`calibrate`).
    """

    name = 'ensemble'
    trainable = True

    def __init__(self, conf, members=None):
        super().__init__(conf)
        names = members or conf.detectors.ensemble_members
        if not names:
            raise base.DetectorError('ensemble_members is empty')
        if self.name in names:
            raise base.DetectorError('an ensemble cannot contain itself')
        self.members = [pipeline.load_detector(conf, n) for n in names]
        self._raised = set()
        model_dir = conf.detectors.model_dir
        path = os.path.join(model_dir, self.name) if model_dir else None
        if path and os.path.exists(os.path.join(path, artifact.METADATA)):
            self.load(path)

    @property
    def learned(self):
        return [m for m in self.members if hasattr(m, 'calibrate')]

    def observe(self, record, sessions):
        found = []
        for member in self.members:
            found.extend(member.observe(record, sessions))
        return self._filter(found)

    def on_session_closed(self, session):
        found = []
        for member in self.members:
            found.extend(member.on_session_closed(session))
        self._raised.discard(tuple(session.key))
        return self._filter(found)

    def _filter(self, found):
        raised = self._raised
        out = []
        for item in found:
            key = tuple(item.session_key)
            if key in raised:
                continue
            raised.add(key)
            item.reason = '%s: %s' % (item.detector, item.reason)
            out.append(item)
        return out

    def fit(self, sessions, progress=None, **kwargs):
        """Train every learned member on the same sessions."""
        sessions = learned_mod.as_sequences(sessions)
        for member in self.learned:
            LOG.info('ensemble: training %s', member.name)
            member.fit(sessions, progress=progress, **kwargs)

    def on_stream_end(self, sessions_of):
        found = []
        for member in self.members:
            found.extend(member.on_stream_end(sessions_of))
        return self._filter(found)

    def reset_stream(self):
        for member in self.members:
            member.reset_stream()
        self._raised.clear()

    def reset_max(self):
        for member in self.learned:
            member.reset_max()

    @property
    def max_seen(self):
        return {m.name: dict(m.max_seen) for m in self.learned}

    def calibrate(self, run_maxima, target_far, failure_maxima=None):
        """Calibrate the union of the members for ``target_far``.

        The members' thresholds are chosen together, so that the ensemble
        (any member raising) meets the target, not each member apart.
        Cross-fitted families (rarity, expectation) of the same name are
        the same model in every member trained on the same normal logs:
        the first learned member holding one keeps it and the others'
        copies are switched off (threshold infinity), so a false alarm is
        not counted once per member. Those families get an equal share of
        ``target_far`` each; every other family of every member is then
        calibrated as one union on the validation runs
        (:func:`~logrca.detectors.learned.calibrate_union`).

        :param run_maxima: one dict per normal validation run, member name
            -> that member's ``max_seen``.
        :param failure_maxima: optional dicts of the same form for labelled
            failure runs of training tests: the union's budget then goes
            to the (member, family) pairs that detect the most
            (:func:`~logrca.detectors.learned.allocate_budget`).
        :returns: member name -> its thresholds.
        """
        if not run_maxima:
            raise base.DetectorError('calibration needs at least one run '
                                     'of normal logs')
        owner = {}
        for member in self.learned:
            for family in member.crossfit_scores():
                owner.setdefault(family, member)
        if failure_maxima is None:
            picked, summary = self._picks_normal(run_maxima, target_far,
                                                 owner)
        else:
            picked, summary = self._picks_labelled(
                run_maxima, failure_maxima, target_far, owner)
        summary.update(runs=len(run_maxima), target_far=target_far,
                       ensemble=True)
        # A (member, family) not picked never raises: the duplicates of
        # shared families, and families the calibration left off.
        for member in self.learned:
            for family in member.FAMILIES:
                member.thresholds[family] = picked.get(
                    (member.name, family), math.inf)
            member.training_summary['calibration'] = dict(summary)
        LOG.info('Calibrated the ensemble (%s): %s', summary,
                 {m.name: m.thresholds for m in self.learned})
        return {m.name: dict(m.thresholds) for m in self.learned}

    def _picks_normal(self, run_maxima, target_far, owner):
        """Thresholds from normal runs: shared families by cross-fitting,
        the others as one union (:func:`calibrate_union`)."""
        share = target_far / max(len(owner), 1)
        fixed = {}
        for member in self.learned:
            member.calibrate_crossfit(share)
            for family, holder in owner.items():
                if holder is member:
                    fixed[(member.name, family)] = member.thresholds[family]
        active = [(m.name, f) for m in self.learned for f in m.FAMILIES
                  if f not in m.disabled and f not in owner]
        runs = [{(m.name, f): r[m.name].get(f, -math.inf)
                 for m in self.learned for f in m.FAMILIES}
                for r in run_maxima]
        picked, flagged = learned_mod.calibrate_union(
            runs, active, fixed, target_far)
        picked.update(fixed)
        return picked, {'runs_above': len(flagged)}

    def _picks_labelled(self, run_maxima, failure_maxima, target_far,
                        owner):
        """Thresholds that spend the budget where training failures are
        detected (:func:`allocate_budget`)."""
        normals = {}
        for member in self.learned:
            scores = member.normal_scores([r[member.name]
                                           for r in run_maxima])
            for family, values in scores.items():
                if owner.get(family, member) is member:
                    normals[(member.name, family)] = values
        failures = [{(m, f): v for m, fams in r.items()
                     for f, v in fams.items()} for r in failure_maxima]
        picked = learned_mod.allocate_budget(normals, failures, target_far)
        return picked, {'labelled_failures': len(failure_maxima)}

    def save(self, path):
        """Save every learned member under ``path/<member>``."""
        for member in self.learned:
            member.save(os.path.join(path, member.name))
        meta = {'format_version': artifact.FORMAT_VERSION,
                'driver': self.name,
                'members': [m.name for m in self.members]}
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, artifact.METADATA), 'w') as f:
            json.dump(meta, f, indent=1)

    def load(self, path):
        meta = artifact.read_metadata(path)
        if meta.get('format_version') != artifact.FORMAT_VERSION or (
                meta.get('driver') != self.name):
            raise artifact.ArtifactError(
                'artifact %s is not an ensemble of format version %d'
                % (path, artifact.FORMAT_VERSION))
        for member in self.learned:
            member.load(os.path.join(path, member.name))
