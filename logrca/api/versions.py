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

"""Version discovery at ``/`` and ``/v1``."""

import flask

from logrca.api import microversion

blueprint = flask.Blueprint('versions', __name__)


def _v1(base):
    return {
        'id': 'v1',
        'status': 'CURRENT',
        # keystoneauth reads ``version``/``min_version`` as the microversion
        # range of an endpoint.
        'version': microversion.MAX_VERSION,
        'min_version': microversion.MIN_VERSION,
        'max_version': microversion.MAX_VERSION,
        'links': [{'rel': 'self', 'href': base + 'v1/'}],
    }


@blueprint.get('/')
def root():
    """List the API versions."""
    return {'versions': [_v1(flask.request.url_root)]}


@blueprint.get('/v1')
def v1():
    """Describe version 1."""
    return {'version': _v1(flask.request.url_root)}
