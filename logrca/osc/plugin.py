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

"""openstackclient plugin of logrca: ``openstack rca anomaly ...``.

Registered as ``openstack.cli.extension: logrca``; its commands live in the
``openstack.logrca.v1`` group. API_NAME, version option and command names are
logrca's own so that python-vitrageclient (``API_NAME = 'rca'``,
``--os-rca-api-version``, ``openstack rca show``...) keeps working beside
it. Only REST: nothing of the server (nor torch) is imported.
"""

from osc_lib import utils

from logrca.osc import client as logrca_client

API_NAME = 'logrca'
API_VERSION_OPTION = 'os_logrca_api_version'
DEFAULT_API_VERSION = '1'
API_VERSIONS = {
    '1': 'logrca.osc.client.Client',
}


def make_client(instance):
    """Return a :class:`~logrca.osc.client.Client` for OSC's ClientManager.

    The keystoneauth session comes from the standard OSC options; the
    endpoint from the catalog (service type ``log-analysis``, OSC's
    interface and region) unless ``--os-logrca-endpoint`` (or the cloud's
    ``log_analysis_endpoint_override``) names one.
    """
    version = instance._api_version[API_NAME]
    if version not in API_VERSIONS:
        raise ValueError('logrca API version %s is not supported; use one '
                         'of %s' % (version, ', '.join(API_VERSIONS)))
    config = instance._cli_options.config
    endpoint = (config.get('logrca_endpoint')
                or instance._cli_options.get_endpoint(
                    logrca_client.SERVICE_TYPE))
    instance.setup_auth()
    return logrca_client.Client(
        session=instance.session, interface=instance.interface,
        region_name=instance.region_name, endpoint_override=endpoint)


def build_option_parser(parser):
    """Add the global options of the plugin."""
    parser.add_argument(
        '--os-logrca-api-version',
        metavar='<logrca-api-version>',
        default=utils.env('OS_LOGRCA_API_VERSION',
                          default=DEFAULT_API_VERSION),
        help='logrca API version, default=%s (Env: OS_LOGRCA_API_VERSION)'
             % DEFAULT_API_VERSION)
    parser.add_argument(
        '--os-logrca-endpoint',
        metavar='<logrca-endpoint>',
        default=utils.env('OS_LOGRCA_ENDPOINT'),
        help='URL of the logrca API, instead of the service catalog\'s '
             '(Env: OS_LOGRCA_ENDPOINT)')
    return parser
