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

"""Unit tests of the fast paths of secret masking used by the reader."""

import pytest

from logrca import masking

SECRETS = [
    ('"auth_password": "KcwRWwyUQw3X2vb3", "target', 'KcwRWwyUQw3X2vb3'),
    ("{u'password': u'two words'}", 'two words'),
    ("-H 'X-Auth-Token: {SHA1}9db779c69b3895d7bb2c' -H", '9db779c69b38'),
    ('Authorization: Basic dXNlcjpwYXNz', 'dXNlcjpwYXNz'),
    ('transport_url=rabbit://openstack:RPass@10.0.0.5:5672/', 'RPass'),
    ('admin_pass=Secr3t) _inject', 'Secr3t'),
    ('keystone_authtoken.password = p4ss', 'p4ss'),
    ('encryption_key=0123abcd', '0123abcd'),
]


@pytest.mark.parametrize('text,secret', SECRETS)
def test_secret_values_are_masked(text, secret):
    masked = masking.mask(text)
    assert secret not in masked
    assert masking.MASK in masked


@pytest.mark.parametrize('text', [
    'key_name=tempest-keypair-1529976062 launch_index=0',
    'keystone_authtoken.region_name = RegionOne',
    'GET http://10.0.20.24:8776/v2/volumes HTTP/1.1',
    "encryption_key_id=None,glance_metadata=<?>",
])
def test_ordinary_values_are_kept(text):
    assert masking.mask(text) == text


def test_line_without_secret_words_is_returned_as_is():
    line = 'Lock "compute_resources" released by "a.b" :: held 0.01s'
    assert masking.mask(line) is line


def test_already_masked_values_stay_readable():
    text = "u'auth_password': u'***', u'auth_username': u'x'"
    assert masking.mask(text) == text
