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

"""JSON error documents and the fault wrapper of the API."""

import json

from oslo_log import log

LOG = log.getLogger(__name__)

JSON_TYPE = 'application/json'


def error_document(status, title, detail, request_id=None):
    """Build an error document in the OpenStack API-SIG format.

    ``{"errors": [{"status": 400, "title": ..., "detail": ...,
    "request_id": ...}]}``
    """
    error = {'status': int(status), 'title': title, 'detail': detail}
    if request_id:
        error['request_id'] = request_id
    return {'errors': [error]}


class FaultWrapper:
    """WSGI middleware that turns unexpected exceptions into a JSON 500.

    The Flask application already answers its own errors with JSON; this
    catches what escapes a middleware (or Flask itself), so a client never
    gets an HTML page or a dropped connection.
    """

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        try:
            return self.application(environ, start_response)
        except Exception:
            LOG.exception('Unexpected error serving %s %s',
                          environ.get('REQUEST_METHOD'),
                          environ.get('PATH_INFO'))
            body = json.dumps(error_document(
                500, 'Internal Server Error',
                'The server could not complete the request.',
                environ.get('openstack.request_id'))).encode('utf-8')
            start_response('500 Internal Server Error', [
                ('Content-Type', JSON_TYPE),
                ('Content-Length', str(len(body)))])
            return [body]
