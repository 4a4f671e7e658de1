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

"""Errors raised by the database layer."""


class DBError(Exception):
    """Base class of the errors of :mod:`logrca.db.api`."""


class InvalidParameter(DBError, ValueError):
    """A filter, sort key, marker or value is not acceptable."""


class InvalidFilter(InvalidParameter):
    """An unknown filter name or a filter value of the wrong type."""


class InvalidSortKey(InvalidParameter):
    """A sort key that is not sortable, or a bad sort direction."""


class InvalidMarker(InvalidParameter):
    """The marker names no stored anomaly."""


class InvalidValue(InvalidParameter):
    """An update value that is not acceptable (e.g. unknown status)."""


class AnomalyNotFound(DBError, LookupError):
    """No anomaly has the given uuid."""

    def __init__(self, uuid):
        super().__init__('anomaly %s not found' % uuid)
        self.uuid = uuid


class ConversationNotFound(DBError, LookupError):
    """No conversation has the given id."""

    def __init__(self, ident):
        super().__init__('conversation %s not found' % ident)
        self.ident = ident


class SchemaNotCurrent(DBError):
    """The database schema is not at the migration head."""
