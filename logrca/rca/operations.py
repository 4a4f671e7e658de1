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

"""The failed operation, inferred from log evidence only.

An operation is what the user saw fail (PROTOCOL.md section 1): instance
boot, volume create, volume attach, network setup, instance connectivity,
identity and keys. It is read from the service logs: the API requests
answered with an error status, the accepted requests whose work then
logged an error, and the words, loggers and traceback functions of the
error records; past failures retrieved from the knowledge base add their
(training) operations as votes.
"""

import collections
import re

from logrca.parsing import access
from logrca.rca import base
from logrca.rca import locations

BOOT = 'instance boot'
VOLUME_CREATE = 'volume create'
VOLUME_ATTACH = 'volume attach'
NETWORK = 'network setup'
CONNECTIVITY = 'instance connectivity'
IDENTITY = 'identity and keys'

# (method, path pattern, operation) for mutating API calls, most specific
# first.
_ROUTES = (
    ('POST', re.compile(r'/os-volume_attachments'), VOLUME_ATTACH),
    ('POST', re.compile(r'/volumes/[^/]+/action'), VOLUME_ATTACH),
    ('POST', re.compile(r'/attachments'), VOLUME_ATTACH),
    ('POST', re.compile(r'/os-keypairs'), IDENTITY),
    ('POST', re.compile(r'/v3/domains|/v3/projects|/v3/users'), IDENTITY),
    ('POST', re.compile(r'/servers/[^/]+/action'), BOOT),
    ('POST', re.compile(r'/servers/?(?:\?|$)'), BOOT),
    ('POST', re.compile(r'/volumes/?(?:\?|$)'), VOLUME_CREATE),
    # Nova creates the ports of an instance it boots (the user's calls
    # create networks, subnets, routers and floating IPs, not ports).
    ('POST', re.compile(r'/ports(?:[/.?]|$)'), BOOT),
    ('POST', re.compile(r'/floatingips'), NETWORK),
    ('PUT', re.compile(r'/routers/[^/]+/add_router_interface'), NETWORK),
    ('POST', re.compile(r'/(?:networks|subnets|routers|security-groups|'
                        r'security-group-rules)'), NETWORK),
    ('PUT', re.compile(r'/(?:networks|subnets|routers)/'), NETWORK),
    ('DELETE', re.compile(r'/(?:networks|subnets|routers)/'), NETWORK),
    # The guest asking the metadata service for its identity and keys:
    # the instance booted, and without an answer it cannot be reached
    # (no SSH key). User data is optional, so its 404 is normal.
    ('GET', re.compile(r'/meta-data/|/meta_data\.json'), CONNECTIVITY),
    ('GET', re.compile(r'/servers/detail|/servers/?(?:\?|$)'), BOOT),
    ('GET', re.compile(r'/volumes/detail|/volumes/?(?:\?|$)'),
     VOLUME_CREATE),
)

_SERVER_ATTACH = re.compile(r'/servers/[^/]+/os-volume_attachments')
# A volume action is a step of an attach (reserve, initialize_connection,
# attach) or a property set while a volume is created (bootable,
# read-only): its path does not tell which, so it only votes.
_AMBIGUOUS = re.compile(r'/volumes/[^/]+/action')

# Calls that only poll or continue a volume operation (listing the
# volumes to see a status change, a volume action of an attach or of a
# create).
_FOLLOWS = (
    ('GET', re.compile(r'/volumes/detail|/volumes/?(?:\?|$)')),
    ('POST', re.compile(r'/volumes/[^/]+/action')),
)

# Calls whose work goes on after the API answered (202 Accepted or 200):
# a server boot, a volume create, a volume attach.
_ASYNC = (
    (re.compile(r'/servers/?(?:\?|$)'), BOOT),
    (re.compile(r'/volumes/?(?:\?|$)'), VOLUME_CREATE),
    (re.compile(r'/servers/[^/]+/os-volume_attachments|'
                r'/attachments(?:[/?]|$)'), VOLUME_ATTACH),
)

# A call refused because a resource it names is in a failed or unfinished
# state (the API's reason, logged under the call's request id): the
# operation that makes the resource failed, and the call only shows it.
# Cinder refuses an attach with "Volume status must be available to
# reserve, but the status is error" (or still "creating", minutes after
# the create was asked for); Nova an action on a server "while it is in
# vm_state error" (or still building).
_STATE_REASONS = (
    ('status', re.compile(r'[Vv]olume status must be [^.]{0,120}?'
                          r'status is (?:error|creating)\b'),
     VOLUME_CREATE),
    ('vm_state', re.compile(r'in vm_state (?:error|building)\b'), BOOT),
)

# Words of error records (message, logger, traceback functions) and the
# operation they suggest, with a weight.
_WORDS = (
    (re.compile(r'attach|detach|initialize_connection|os-brick|connector|'
                r'reserve_volume|iscsi|block_device_mapping', re.I),
     VOLUME_ATTACH, 1.0),
    (re.compile(r'spawn|build_and_run|schedul|NoValidHost|No valid host|'
                r'_build_|claim|resource_tracker|libvirt|image|flavor|'
                r'instance_|servers|placement|allocation', re.I), BOOT, 0.7),
    (re.compile(r'create_volume|volume_create|CreateVolume|cinder\.volume|'
                r'No valid backend|volume.flows|lvm|volume_type|'
                r'cinder\.scheduler', re.I), VOLUME_CREATE, 0.9),
    (re.compile(r'neutron\.plugins|ml2|subnet|network_create|'
                r'create_network|router|security_group|segment|ipam|'
                r'floating', re.I), NETWORK, 0.8),
    (re.compile(r'dhcp|l3.agent|metadata|ovs|openvswitch|port_binding|'
                r'binding:|vif|ssh|ping|connectivity', re.I), CONNECTIVITY,
     0.5),
    (re.compile(r'keypair|key_pair|keystone|domain|identity', re.I),
     IDENTITY, 0.8),
)


# Services that wire instances to their networks behind the API: their
# errors come from asynchronous RPC work (a router or DHCP port being set
# up for a new instance), not from a request the user made.
_AGENT_RE = re.compile(r'^neutron-(?:l3|dhcp|openvswitch|ovs|linuxbridge|'
                       r'metadata|sriov-nic|macvtap)(?:-agent)?$')
# Services that answer the user's API calls.
_API_RE = re.compile(r'-(?:api|server)$|^keystone')


def agents_only(errors):
    """Whether every error record comes from a Neutron agent.

    When the only errors are a Neutron agent's (no API service failed a
    call), the networks were created and what failed is wiring the new
    instance: the user sees the instance boot fail (the server never
    becomes ACTIVE), not a network call.
    """
    streams = {r.stream or '' for r in errors}
    return bool(streams) and all(_AGENT_RE.match(s) for s in streams) \
        and not any(_API_RE.search(s) for s in streams)


def route(method, path, status=None):
    """The operation a failed API call tells of, or None.

    Mostly the operation the call serves. A volume attach answered 409
    Conflict was refused because of the server's state (not ACTIVE): the
    user's instance never booted, and the attach only shows it.
    """
    for want, pattern, operation in _ROUTES:
        if method == want and pattern.search(path):
            if operation == VOLUME_ATTACH and status == 409 and \
                    _SERVER_ATTACH.search(path):
                return BOOT
            return operation
    return None


def error_responses(records):
    """API access lines answered with status >= 400.

    :returns: list of ``(record, method, path, status)``, in order.
    """
    found = []
    for record in records:
        response = access.error_response(record.message)
        if response is not None:
            found.append((record, *response))
    return found


def state_reasons(records):
    """Requests refused for the failed state of a resource they name.

    :returns: dict of request id to ``(operation, reason_record)``: the
        operation that made the resource, and the first record of the
        request giving that reason.
    """
    found = {}
    for record in records:
        rid = record.request_id
        if not rid or rid in found:
            continue
        message = record.message or ''
        for word, pattern, operation in _STATE_REASONS:
            if word in message and pattern.search(message):
                found[rid] = (operation, record)
                break
    return found


def accepted_call(record):
    """The operation of an accepted boot, volume create or attach call.

    :returns: the operation when ``record`` is the access line of such a
        call answered below 400, else None.
    """
    message = record.message or ''
    if 'POST' not in message or 'HTTP/' not in message:
        return None
    response = access.parse(message)
    if response is None or response.method != 'POST' or \
            response.status >= 400:
        return None
    for pattern, operation in _ASYNC:
        if pattern.search(response.path):
            return operation
    return None


def attaches_accepted(records):
    """The volume attaches users asked for and the API accepted.

    :returns: list of ``(timestamp, project_id)`` of the accepted attach
        calls, in time order.
    """
    found = [(r.timestamp, r.project_id) for r in records
             if accepted_call(r) == VOLUME_ATTACH]
    return sorted(found, key=lambda a: a[0] or 0.0)


def _attaching(accepted, record):
    """Whether ``record``'s project had an attach accepted before it."""
    for ts, project in accepted:
        if ts is not None and record.timestamp is not None and \
                ts > record.timestamp:
            return False
        if project == record.project_id or not record.project_id:
            return True
    return False


def async_failures(records, history=()):
    """Accepted calls whose own request then logged an error.

    The API answers a boot, a volume create or an attach before the work
    is done; when the work fails, its errors are logged under the call's
    request id (Cinder's scheduler failing the create flow, Nova's
    compute failing the build), and the user sees it only later, as a
    status that never changes or a call refused on the resource.

    :param history: records around ``records`` (the window looked at),
        read for the accepted calls and their errors too.
    :returns: list of ``(error_record, operation, call_record)``, one per
        accepted call whose request logged an ERROR or worse, in time
        order of the first such error.
    """
    accepted = {}
    pool = list(history) + list(records)
    for record in pool:
        operation = accepted_call(record) if record.request_id else None
        if operation is not None:
            accepted.setdefault(record.request_id, (operation, record))
    if not accepted:
        return []
    first = {}
    for record in pool:
        rid = record.request_id
        if rid in accepted and record.is_error:
            known = first.get(rid)
            if known is None or (record.timestamp or 0.0) < \
                    (known.timestamp or 0.0):
                first[rid] = record
    found = [(error, accepted[rid][0], accepted[rid][1])
             for rid, error in first.items()]
    return sorted(found, key=lambda f: f[0].timestamp or 0.0)


def _follows(method, path):
    return any(method == m and pattern.search(path)
               for m, pattern in _FOLLOWS)


def failed_requests(records, history=()):
    """API requests answered with status >= 400.

    A request refused for the failed state of a resource it names (see
    :func:`state_reasons`) tells the operation that made the resource.
    A refused call that only polls or continues a volume operation (a
    volume list, a volume action) after its project had a volume attach
    accepted (:func:`attaches_accepted` of ``history`` and ``records``)
    belongs to that attach: the volume was made, and the user waits for
    it to be attached. (Only an accepted attach says so: an access line
    is written when its answer is, so an attach still in flight, whose
    volume actions come first, is not seen yet.)

    :param history: records before and around ``records`` (the whole
        window looked at), read for the accepted attach calls only.
    :returns: list of ``(record, operation, decisive, reason)``, in
        order; ``decisive`` is False for a call whose path serves more
        than one operation (and neither a state reason nor an accepted
        attach says which); ``reason`` is the record giving the state
        reason, or None.
    """
    reasons = state_reasons(records)
    accepted = None
    found = []
    for record, method, path, status in error_responses(records):
        reason = reasons.get(record.request_id) if record.request_id \
            else None
        if reason is not None:
            found.append((record, reason[0], True, reason[1]))
            continue
        if _follows(method, path):
            if accepted is None:
                accepted = attaches_accepted(list(history) + list(records))
            if _attaching(accepted, record):
                found.append((record, VOLUME_ATTACH, True, None))
                continue
        operation = route(method, path, status)
        if operation:
            found.append((record, operation,
                          not _AMBIGUOUS.search(path), None))
    return found


def infer(records, kb_matches=(), kb_weight=1.0, history=()):
    """The failed operation and the records backing it.

    :param records: the context records (time order).
    :param history: every record of the window looked at, read for the
        accepted calls: volume attaches (see :func:`failed_requests`) and
        work that failed after its call was accepted (see
        :func:`async_failures`).
    :param kb_matches: ``(entry, score)`` pairs of past failures retrieved
        from the knowledge base; each votes for its operation.
    :returns: ``(operation, scores, backing_records)``; ``operation`` is
        :data:`logrca.rca.base.UNKNOWN_OPERATION` when nothing points
        anywhere.
    """
    scores = collections.Counter()
    backing = collections.defaultdict(list)
    requests = failed_requests(records, history)
    for n, (record, operation, _decisive, reason) in enumerate(requests):
        # The first failed request weighs most: later ones are often
        # consequences (a volume attach after a failed boot).
        scores[operation] += 3.0 / (1 + n)
        if reason is not None and reason not in backing[operation]:
            backing[operation].append(reason)
        backing[operation].append(record)
    failures = async_failures(records, history)
    for n, (error, operation, call) in enumerate(failures):
        scores[operation] += 3.0 / (1 + n)
        for record in (error, call):
            if record not in backing[operation]:
                backing[operation].append(record)
    # A call the user made and saw refused, or an accepted call whose
    # work then failed, is what failed for the user: the earliest one
    # whose path (or state reason) tells its operation decides, and the
    # words of the errors and past failures only vote when there is none.
    decisive = [(r.timestamp or 0.0, n, op)
                for n, (r, op, sure, _w) in enumerate(requests) if sure]
    decisive += [(e.timestamp or 0.0, len(requests) + n, op)
                 for n, (e, op, _c) in enumerate(failures)]
    first = min(decisive)[2] if decisive else None
    errors = [r for r in records if r.is_error]
    # Agent-only errors: their network words describe the instance's
    # wiring, so they vote for the instance boot.
    wiring = agents_only(errors)
    for n, record in enumerate(errors[:30]):
        weight = 1.0 / (1 + 0.2 * n)
        funcs = ' '.join(f[1] for f in locations.frames(record.extra[:120]))
        text = ' '.join((record.logger or '', record.message[:400], funcs))
        for pattern, operation, w in _WORDS:
            hits = len(pattern.findall(text))
            if hits and wiring and operation in (NETWORK, CONNECTIVITY):
                operation = BOOT
            if hits:
                scores[operation] += weight * w * min(hits, 3) / 3.0
                if record not in backing[operation]:
                    backing[operation].append(record)
    for entry, score in kb_matches:
        if entry.operation in base.OPERATIONS:
            scores[entry.operation] += kb_weight * max(score, 0.0)
    if not scores:
        return base.UNKNOWN_OPERATION, scores, []
    operation = first or scores.most_common(1)[0][0]
    return operation, scores, backing.get(operation, [])


def from_labels(assertion, api):
    """The failed operation from the fault tables (harness use only).

    The assertion when there is one, else the API call (PROTOCOL.md).
    """
    assertion = (assertion or '').strip().upper()
    api = ' '.join((api or '').split()).lower()
    by_assertion = {'FAILURE_INSTANCE_ACTIVE': BOOT,
                    'FAILURE_VOLUME_CREATED': VOLUME_CREATE,
                    'FAILURE_VOLUME_ATTACHED': VOLUME_ATTACH,
                    'FAILURE_SSH': CONNECTIVITY}
    if assertion in by_assertion:
        return by_assertion[assertion]
    for prefix, operation in (
            ('openstack server create', BOOT), ('nova list', BOOT),
            ('openstack server reboot', BOOT),
            ('openstack server add volume', VOLUME_ATTACH),
            ('openstack volume create', VOLUME_CREATE),
            ('cinder list', VOLUME_CREATE),
            ('openstack volume list', VOLUME_CREATE),
            ('openstack network', NETWORK), ('openstack subnet', NETWORK),
            ('openstack router', NETWORK),
            ('openstack security group', NETWORK),
            ('openstack floating ip', NETWORK),
            ('openstack keypair', IDENTITY),
            ('openstack domain', IDENTITY)):
        if api.startswith(prefix):
            return operation
    return None
