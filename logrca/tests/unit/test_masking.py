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

"""Unit tests of secret masking."""

import pytest

from logrca import masking

CASES = [
    ('password=hunter2 user=bob', 'hunter2'),
    ('"admin_password": "s3cr3t!"', 's3cr3t!'),
    ('X-Auth-Token: gAAAAABbMxyz0123', 'gAAAAABbMxyz0123'),
    ("{'X-Auth-Token': 'abcdef0123456789'}", 'abcdef0123456789'),
    ('Authorization: Bearer eyJhbGciOi.J9.xyz', 'eyJhbGciOi.J9.xyz'),
    ('transport_url = rabbit://stackrabbit:RabbitPw@10.0.0.1:5672/',
     'RabbitPw'),
    ('connection=mysql+pymysql://nova:NovaDbPw@db/nova', 'NovaDbPw'),
    ('os_secret_key=AKIAxyz', 'AKIAxyz'),
    ('token gAAAAABbM' + 'x' * 60, 'x' * 60),
]


@pytest.mark.parametrize('text,secret', CASES)
def test_secrets_are_masked(text, secret):
    masked = masking.mask(text)
    assert secret not in masked
    assert masking.MASK in masked


def test_ordinary_lines_are_untouched():
    line = ('Took 12.34 seconds to build instance. '
            '[instance: 4b4b5c1e-1d2f-4c44-9d4c-c0a1b0d0e0f0]')
    assert masking.mask(line) == line
