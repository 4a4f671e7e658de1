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

"""A small REST client of the logrca API on a keystoneauth session."""

from urllib import parse as urlparse

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc
from osc_lib import exceptions as osc_exc

# Keystone service type of logrca (Vitrage owns root-cause-analysis/rca).
SERVICE_TYPE = 'log-analysis'
MICROVERSION = '1.0'
# Questions, conversations and feedback came with 1.1.
QUESTIONS_MICROVERSION = '1.1'


class APIError(osc_exc.CommandError):
    """The API answered with an error; carries its HTTP status."""

    def __init__(self, status, message):
        super().__init__('%s (HTTP %s)' % (message, status))
        self.status = status


def _error_message(response):
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason
    if isinstance(body, dict):
        errors = body.get('errors')
        if errors and isinstance(errors, list):
            return '; '.join(str(e.get('detail') or e.get('title'))
                             for e in errors if isinstance(e, dict))
        error = body.get('error')
        if isinstance(error, dict):
            return str(error.get('message') or error.get('title'))
    return str(body)[:500]


class AnomalyManager:
    """Calls on ``/v1/anomalies``."""

    def __init__(self, client):
        self._client = client

    def list(self, **params):
        """One page of anomalies; ``params`` are the API's query.

        :returns: ``(anomalies, next_marker)``; ``next_marker`` is the
            marker of the next page, None on the last page.
        """
        query = {k: v for k, v in params.items() if v is not None}
        body = self._client.get('/v1/anomalies', params=query)
        next_marker = None
        for link in body.get('links') or ():
            if link.get('rel') == 'next':
                values = urlparse.parse_qs(urlparse.urlsplit(
                    link.get('href', '')).query).get('marker')
                next_marker = values[-1] if values else None
        return body['anomalies'], next_marker

    def get(self, anomaly_id):
        return self._client.get('/v1/anomalies/%s' % anomaly_id)['anomaly']

    def update(self, anomaly_id, status, comment=None):
        body = {'status': status}
        if comment is not None:
            body['comment'] = comment
        return self._client.patch('/v1/anomalies/%s' % anomaly_id,
                                  body)['anomaly']

    def explanation(self, anomaly_id):
        return self._client.get(
            '/v1/anomalies/%s/explanation' % anomaly_id)['explanation']


class QuestionManager:
    """Calls on ``/v1/questions`` and ``/v1/conversations`` (1.1)."""

    def __init__(self, client):
        self._client = client

    def ask(self, question, conversation_id=None):
        body = {'question': question}
        if conversation_id is not None:
            body['conversation_id'] = conversation_id
        return self._client.post('/v1/questions', body,
                                 microversion=QUESTIONS_MICROVERSION)

    def conversation(self, conversation_id):
        return self._client.get(
            '/v1/conversations/%s' % conversation_id,
            microversion=QUESTIONS_MICROVERSION)['conversation']


class FeedbackManager:
    """Calls on ``/v1/anomalies/{id}/feedback`` (1.1)."""

    def __init__(self, client):
        self._client = client

    def create(self, anomaly_id, verdict, module=None, function=None,
               cause=None, comment=None):
        body = {'verdict': verdict}
        for key, value in (('module', module), ('function', function),
                           ('cause', cause), ('comment', comment)):
            if value is not None:
                body[key] = value
        return self._client.post('/v1/anomalies/%s/feedback' % anomaly_id,
                                 body, microversion=QUESTIONS_MICROVERSION
                                 )['feedback']

    def list(self, anomaly_id):
        return self._client.get('/v1/anomalies/%s/feedback' % anomaly_id,
                                microversion=QUESTIONS_MICROVERSION
                                )['feedback']


class Client:
    """Client of version 1 of the logrca API.

    :param session: a keystoneauth1 session (OSC's).
    :param endpoint_override: the API's URL instead of the catalog's.
    """

    def __init__(self, session, interface=None, region_name=None,
                 endpoint_override=None, microversion=MICROVERSION):
        self._adapter = adapter.Adapter(
            session, service_type=SERVICE_TYPE, interface=interface,
            region_name=region_name, endpoint_override=endpoint_override,
            default_microversion=microversion)
        self.anomalies = AnomalyManager(self)
        self.questions = QuestionManager(self)
        self.feedback = FeedbackManager(self)

    def _request(self, method, url, **kwargs):
        try:
            response = self._adapter.request(
                url, method, raise_exc=False,
                headers={'Accept': 'application/json'}, **kwargs)
        except ks_exc.EndpointNotFound as exc:
            raise osc_exc.CommandError(
                'No %s endpoint in the service catalog; give one with '
                '--os-logrca-endpoint' % SERVICE_TYPE) from exc
        if response.status_code >= 400:
            raise APIError(response.status_code, _error_message(response))
        return response.json()

    def get(self, url, params=None, microversion=None):
        kwargs = {'microversion': microversion} if microversion else {}
        return self._request('GET', url, params=params, **kwargs)

    def patch(self, url, body):
        return self._request('PATCH', url, json=body)

    def post(self, url, body, microversion=None):
        kwargs = {'microversion': microversion} if microversion else {}
        return self._request('POST', url, json=body, **kwargs)
