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

"""The baseline detector: error bursts and new error templates."""

from oslo_log import log

from logrca.agent import sessions as sessions_mod
from logrca.detectors import anomaly
from logrca.detectors import base
from logrca.parsing import records
from logrca.parsing import speedups

LOG = log.getLogger(__name__)

WARN_LEVELS = frozenset(('WARNING', 'ERROR', 'CRITICAL'))

_ERROR_LEVELS = records.ERROR_LEVELS


class BaselineDetector(base.Detector):
    """A simple, honest rule: a session with an ERROR or CRITICAL record.

    It raises one anomaly per request session (or per service window for
    records without a request id) as soon as ``error_burst_count`` error
    records were seen in it, citing them as evidence. Optionally it also
    raises a WARNING-or-worse record whose template was never seen before.
    It is the yardstick the learned detectors are compared with.
    """

    name = 'baseline'

    def __init__(self, conf):
        super().__init__(conf)
        self.burst = conf.detectors.error_burst_count
        self.new_template_alarm = conf.detectors.new_template_alarm
        self._seen_templates = set()

    def _home(self, sessions):
        # The request session if there is one, else the service window.
        for session in sessions:
            if session.kind == sessions_mod.REQUEST:
                return session
        for session in sessions:
            if session.kind == sessions_mod.WINDOW:
                return session
        return sessions[0]

    def observe(self, record, sessions):
        # Only WARNING-or-worse records need the session they belong to:
        # the others cost a set look-up. With the compiled accelerator,
        # records of known templates below ERROR are answered in C (see
        # _install); the others come here.
        template_id = record.template_id
        new_template = False
        if (template_id is not None
                and template_id not in self._seen_templates):
            self._seen_templates.add(template_id)
            new_template = True
        if not sessions:
            return []
        level = record.level
        if level in _ERROR_LEVELS:
            home = self._home(sessions)
            # Per-session scratch space only for sessions with errors.
            state = home.state.get(self.name)
            if state is None:
                state = home.state[self.name] = {'raised': False}
            if state['raised']:
                return []
            errors = [r for r in home.records if r.is_error]
            if len(errors) >= self.burst:
                state['raised'] = True
                return [self._make(home, record, errors,
                                   'error burst: %d ERROR/CRITICAL '
                                   'record(s)' % len(errors),
                                   float(len(errors)))]
        elif (new_template and self.new_template_alarm
              and level in WARN_LEVELS):
            home = self._home(sessions)
            return [self._make(home, record, [record],
                               'new %s template' % level, 1.0)]
        return []

    def _make(self, session, record, cited, reason, score):
        evidence = [anomaly.Evidence.from_record(r) for r in cited[:20]]
        stamps = [r.timestamp for r in cited if r.timestamp is not None]
        projects = [r.project_id for r in cited if r.project_id]
        users = [r.user_id for r in cited if r.user_id]
        return anomaly.Anomaly(
            detector=self.name, score=score, reason=reason,
            session_key=session.key,
            start_time=min(stamps) if stamps else None,
            end_time=max(stamps) if stamps else None,
            raised_at=record.timestamp, service=record.stream,
            host=record.host,
            project_id=projects[0] if projects else None,
            user_id=users[0] if users else None,
            request_ids=sorted({r.request_id for r in cited
                                if r.request_id}),
            instance_ids=sorted({r.instance_id for r in cited
                                 if r.instance_id}),
            evidence=evidence, threshold=float(self.burst))


# The pure-Python BaselineDetector.observe (the accelerator's reference;
# its C code calls it, by this name, for the records it does not answer).
_PYTHON_OBSERVE = BaselineDetector.observe

# The compiled BaselineDetector.observe when the accelerator is in use.
speedups.register_method(BaselineDetector, 'observe', 'setup_baseline',
                         'baseline_observe_method', globals())
