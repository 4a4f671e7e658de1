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

"""Terminal rendering of a structured explanation."""

import textwrap


def _wrap(text, indent='    ', width=100):
    return textwrap.fill(text or '', width=width, initial_indent=indent,
                         subsequent_indent=indent)


def terminal(body, width=100, max_line=300):
    """A plain-text rendering of an explanation document."""
    out = []
    out.append('Anomaly %s  (driver %s, confidence %.2f)' % (
        body.get('anomaly_id'), body.get('driver'),
        body.get('confidence') or 0.0))
    out.append('')
    out.append('Summary')
    out.append(_wrap(body.get('summary'), width=width))
    out.append('Failed operation: %s' % body.get('operation'))
    out.append('')
    out.append('Suspects')
    for n, s in enumerate(body.get('suspects') or [], 1):
        where = s['module'] + (':%s' % s['function'] if s.get('function')
                               else '')
        out.append('  %d. %-60s %s  score %.2f  [%s]' % (
            n, where, s.get('service') or '-', s.get('score') or 0.0,
            ', '.join(s.get('citations') or [])))
        if s.get('why'):
            out.append(_wrap(s['why'], indent='       ', width=width))
    if body.get('chain'):
        out.append('')
        out.append('Causal chain')
        for step in body['chain']:
            out.append('  -> %s [%s]' % (step['step'][:max_line],
                                         ', '.join(step['citations'])))
    out.append('')
    out.append('Evidence')
    for line in body.get('evidence') or []:
        first, _, rest = (line.get('text') or '').partition('\n')
        out.append('  %-4s %s %s:%s' % (line['id'], line.get('stream'),
                                        line.get('lineno'), ''))
        out.append('       %s' % first[:max_line])
        if rest:
            extra = rest.split('\n')
            for tb in extra[-4:]:
                out.append('       | %s' % tb[:max_line])
    if body.get('next_steps'):
        out.append('')
        out.append('Next steps')
        for step in body['next_steps']:
            out.append('  * %s [%s]' % (step['text'],
                                        ', '.join(step['citations'])))
    if body.get('knowledge'):
        out.append('')
        out.append('Knowledge base')
        for k in body['knowledge']:
            out.append('  %-4s %s (%s)' % (k['id'], k['title'], k['ref']))
    if body.get('narrative'):
        out.append('')
        out.append('Narrative')
        out.append(_wrap(body['narrative'], width=width))
    if body.get('redacted_lines'):
        out.append('')
        out.append('(%d line(s) of other projects hidden)'
                   % body['redacted_lines'])
    return '\n'.join(out)
