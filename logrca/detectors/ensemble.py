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
    ensemble's artifact only names them. Calibration splits the target
    false-alarm rate evenly between the learned members.
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

    def calibrate(self, run_maxima, target_far):
        share = target_far / max(len(self.learned), 1)
        return {m.name: m.calibrate([r[m.name] for r in run_maxima], share)
                for m in self.learned}

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
