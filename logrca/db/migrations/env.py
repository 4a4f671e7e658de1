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

"""Alembic environment of the logrca database."""

from alembic import context

from logrca.db import models

target_metadata = models.Base.metadata


def run_migrations_online():
    """Run migrations on the connection logrca.db.migration passes."""
    connection = context.config.attributes.get('connection')
    if connection is None:
        raise RuntimeError('run migrations with logrca-manage db sync')
    context.configure(connection=connection,
                      target_metadata=target_metadata,
                      render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError('offline migrations are not supported')
run_migrations_online()
