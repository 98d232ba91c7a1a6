"""The DynamoDB store (TDEV_STATE_BACKEND=dynamodb): one table a team shares across machines.

One item per record, key `pk` = "<kind>#<id>". Two global secondary indexes answer every
listing without a scan: `by-time` (kind, time#id) for evolutions, tasks and patterns by
time, and `by-parent` (parent, time#id) for the tasks of an evolution and the spans of a
trace. Status changes are conditional writes, so two operators cannot both take one
evolution; one active evolution per target is a lock item `target#<target>` written in
the same transaction as the evolution and deleted in the one that makes it final.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

from lib import config, log, procs
from lib.adapters import aws
from lib.errors import Conflict
from lib.store.base import (
    ACTIVE,
    EVOLUTION_FIELDS,
    JSON_FIELDS,
    PATTERN_FIELDS,
    SPAN_FIELDS,
    TASK_FIELDS,
    Store,
    target_busy,
)
from lib.store.sqlite import SQLiteStore
from lib.timeparse import iso

FIELDS = {"evolution": EVOLUTION_FIELDS, "task": TASK_FIELDS, "span": SPAN_FIELDS, "pattern": PATTERN_FIELDS}
FLOAT_FIELDS = {"cost_usd", "duration_s"}
KINDS = ("evolution", "task", "span", "pattern", "meta")
BY_TIME, BY_PARENT = "by-time", "by-parent"
_INTERNAL = {"pk", "rtype", "ts", "parent"}


def table_name() -> str:
    return os.environ.get("TDEV_STATE_TABLE", "").strip() or config.settings()["aws"]["state_table"]


def _key_of(kind: str, record: dict) -> str:
    return f"{kind}#{record['span_id'] if kind == 'span' else record['id']}"


def _time_of(kind: str, record: dict) -> str:
    """The sort key of both indexes: time then id, so that listings come out in time order."""
    moment = {"evolution": "started_at", "task": "started_at", "span": "start", "pattern": "created_at"}[kind]
    ident = record.get("span_id") if kind == "span" else record.get("id")
    return f"{record.get(moment) or ''}#{ident}"


def _parent_of(kind: str, record: dict) -> str | None:
    if kind == "task":
        return f"evolution#{record.get('evolution_id')}"
    if kind == "span":
        return f"trace#{record.get('trace_id')}"
    return None


def _to_attr(field: str, value):
    from boto3.dynamodb.types import TypeSerializer

    if field in JSON_FIELDS and value is not None and not isinstance(value, str):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        value = Decimal(repr(value))
    return TypeSerializer().serialize(value)


def _from_attr(field: str, attribute):
    from boto3.dynamodb.types import TypeDeserializer

    value = TypeDeserializer().deserialize(attribute)
    if isinstance(value, Decimal):
        return float(value) if field in FLOAT_FIELDS or value != value.to_integral_value() else int(value)
    if field in JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class DynamoDBStore(Store):
    backend = "dynamodb"

    def __init__(self, table: str):
        self.table = table
        self.client = aws.client("dynamodb")

    @classmethod
    def open(cls, create: bool = False, before_create: Callable[[], None] | None = None) -> Store:
        """The table's store; a missing table reads as an empty history, or with create is made after
        before_create (the lost-store refusal, DESIGN §8) has had its say: one DescribeTable either way."""
        table = table_name()
        if not cls.table_exists(table):
            if not create:
                # Reads before init_evolution.py: an empty history, said once (DESIGN §8).
                log.note(f"no evolution history yet in DynamoDB table {table} (run python scripts/init_evolution.py)")
                return SQLiteStore.in_memory(exists=False)
            if before_create is not None:
                before_create()
            cls.create_table(table)
        return cls(table)

    @staticmethod
    def table_exists(table: str | None = None) -> bool:
        table = table or table_name()
        try:
            with aws.aws_errors(f"open the DynamoDB table {table}"):
                aws.client("dynamodb").describe_table(TableName=table)
        except aws.AWSNotFound:
            return False
        return True

    @staticmethod
    def create_table(table: str) -> None:
        client = aws.client("dynamodb")
        with aws.aws_errors(f"create the DynamoDB table {table}"):
            client.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"}
                                      for name in ("pk", "rtype", "ts", "parent")],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[
                    {"IndexName": BY_TIME, "Projection": {"ProjectionType": "ALL"},
                     "KeySchema": [{"AttributeName": "rtype", "KeyType": "HASH"},
                                   {"AttributeName": "ts", "KeyType": "RANGE"}]},
                    {"IndexName": BY_PARENT, "Projection": {"ProjectionType": "ALL"},
                     "KeySchema": [{"AttributeName": "parent", "KeyType": "HASH"},
                                   {"AttributeName": "ts", "KeyType": "RANGE"}]},
                ],
            )
            client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    # ---- items ------------------------------------------------------------------------------
    def _item(self, kind: str, record: dict) -> dict:
        unknown = set(record) - set(FIELDS[kind])
        if unknown:
            raise ValueError(f"unknown {kind} fields: {sorted(unknown)}")
        item = {field: _to_attr(field, value) for field, value in record.items() if value is not None}
        item.update(pk={"S": _key_of(kind, record)}, rtype={"S": kind}, ts={"S": _time_of(kind, record)})
        parent = _parent_of(kind, record)
        if parent:
            item["parent"] = {"S": parent}
        return item

    @staticmethod
    def _record(kind: str, item: dict) -> dict:
        record = dict.fromkeys(FIELDS[kind])
        record.update({f: _from_attr(f, v) for f, v in item.items() if f not in _INTERNAL})
        if kind == "evolution":
            record["dry_run"] = bool(record.get("dry_run"))
        return record

    def _get(self, key: str) -> dict | None:
        with aws.aws_errors(f"read {key} from {self.table}"):
            return self.client.get_item(TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")

    def _query(self, index: str, partition: str, value: str, lower: str | None = None, upper: str | None = None,
               descending: bool = False, filters: tuple[str, dict, dict] | None = None, limit: int | None = None):
        """Items of one index partition in ts order, optionally within [lower, upper)."""
        names = {"#p": partition}
        values = {":p": {"S": value}}
        condition = "#p = :p"
        if lower and upper:
            condition += " AND #ts BETWEEN :lo AND :hi"
        elif lower:
            condition += " AND #ts >= :lo"
        elif upper:
            condition += " AND #ts <= :hi"
        if lower:
            values[":lo"] = {"S": lower}
        if upper:
            values[":hi"] = {"S": upper}
        if lower or upper:
            names["#ts"] = "ts"
        params = {"TableName": self.table, "IndexName": index, "KeyConditionExpression": condition,
                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                  "ScanIndexForward": not descending}
        if filters:
            params["FilterExpression"] = filters[0]
            names.update(filters[1])
            values.update(filters[2])
        found = 0
        with aws.aws_errors(f"query {self.table}"):
            for page in self.client.get_paginator("query").paginate(**params):
                for item in page.get("Items", []):
                    if upper and item["ts"]["S"] >= upper:
                        continue  # BETWEEN is inclusive; the upper bound is not
                    yield item
                    found += 1
                    if limit and found >= limit:
                        return

    def _transact(self, items: list[dict]) -> list[str]:
        """TransactWriteItems; on a cancellation the reasons' codes, else []."""
        from botocore.exceptions import ClientError

        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if aws.is_error(error, "TransactionCanceledException"):
                return [r.get("Code", "") for r in error.response.get("CancellationReasons", [])] or ["unknown"]
            raise aws.translate(error, f"write to {self.table}") from error
        return []

    def _lock_key(self, target: str) -> str:
        return f"target#{target}"

    def _holder(self, target: str) -> str | None:
        """The evolution holding the target's lock item, if any."""
        return (self._get(self._lock_key(target)) or {}).get("evolution_id", {}).get("S")

    # ---- evolutions -------------------------------------------------------------------------------
    def create_evolution(self, record: dict) -> dict:
        item = self._item("evolution", record)
        writes = [{"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}]
        if record.get("status") in ACTIVE:
            writes.append({"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                                   "Item": {"pk": {"S": self._lock_key(record["target"])},
                                            "evolution_id": {"S": record["id"]}}}})
        reasons = self._transact(writes)
        if reasons:
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise target_busy(record["target"], self._holder(record["target"]))
            raise Conflict(f"evolution {record['id']} already exists", "use a new id")
        return self.get_evolution(record["id"])

    def get_evolution(self, evolution_id: str) -> dict | None:
        item = self._get(f"evolution#{evolution_id}")
        return self._record("evolution", item) if item else None

    def _update(self, kind: str, key: str, fields: dict, merged: dict, condition: str = "attribute_exists(pk)",
                names: dict | None = None, values: dict | None = None) -> dict:
        """One Update of only the given fields (concurrent writers of other fields keep theirs)."""
        unknown = set(fields) - set(FIELDS[kind])
        if unknown:
            raise ValueError(f"unknown {kind} fields: {sorted(unknown)}")
        names, values = dict(names or {}), dict(values or {})
        sets, removes = [], []
        for index, (field, value) in enumerate(fields.items()):
            names[f"#f{index}"] = field
            if value is None:
                removes.append(f"#f{index}")
            else:
                sets.append(f"#f{index} = :v{index}")
                values[f":v{index}"] = _to_attr(field, value)
        derived = {"ts": _time_of(kind, merged), "parent": _parent_of(kind, merged)}
        for name, value in derived.items():
            if value is not None:
                names[f"#{name}"] = name
                values[f":{name}"] = {"S": value}
                sets.append(f"#{name} = :{name}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        update = {"TableName": self.table, "Key": {"pk": {"S": key}}, "UpdateExpression": expression,
                  "ConditionExpression": condition, "ExpressionAttributeNames": names}
        if values:
            update["ExpressionAttributeValues"] = values
        return update

    def update_evolution(self, evolution_id: str, fields: dict, expect_status: tuple | None = None) -> bool:
        current = self.get_evolution(evolution_id)
        if current is None or not fields:
            return current is not None
        if expect_status and current["status"] not in expect_status:
            return False
        merged = {**current, **fields}
        condition, names, values = "attribute_exists(pk)", {}, {}
        if expect_status:
            values = {f":s{index}": {"S": status} for index, status in enumerate(expect_status)}
            names["#status"] = "status"
            condition += f" AND #status IN ({', '.join(values)})"
        writes = [{"Update": self._update("evolution", f"evolution#{evolution_id}", fields, merged, condition,
                                          names, values)}]
        lock = {"pk": {"S": self._lock_key(current["target"])}}
        was_active, now_active = current["status"] in ACTIVE, merged["status"] in ACTIVE
        if was_active and not now_active:
            writes.append({"Delete": {"TableName": self.table, "Key": lock,
                                      "ConditionExpression": "attribute_not_exists(pk) OR evolution_id = :me",
                                      "ExpressionAttributeValues": {":me": {"S": evolution_id}}}})
        elif now_active and not was_active:
            writes.append({"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                                   "Item": {**lock, "evolution_id": {"S": evolution_id}}}})
        reasons = self._transact(writes)
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed" and now_active:
            raise target_busy(current["target"], self._holder(current["target"]))
        return not reasons

    def list_evolutions(self, since=None, until=None, statuses=None, target=None, limit=None) -> list[dict]:
        clauses, names, values = [], {}, {}
        if statuses:
            names["#status"] = "status"
            marks = []
            for index, status in enumerate(statuses):
                values[f":s{index}"] = {"S": status}
                marks.append(f":s{index}")
            clauses.append(f"#status IN ({', '.join(marks)})")
        if target:
            names["#target"] = "target"
            values[":target"] = {"S": target}
            clauses.append("#target = :target")
        filters = (" AND ".join(clauses), names, values) if clauses else None
        items = self._query(BY_TIME, "rtype", "evolution", lower=since, upper=until, descending=True,
                            filters=filters, limit=limit)
        return [self._record("evolution", item) for item in items]

    # ---- tasks ----------------------------------------------------------------------------------------
    def _put(self, kind: str, record: dict, only_new: bool = False) -> None:
        params = {"TableName": self.table, "Item": self._item(kind, record)}
        if only_new:
            params["ConditionExpression"] = "attribute_not_exists(pk)"
        with aws.aws_errors(f"write a {kind} to {self.table}"):
            self.client.put_item(**params)

    def create_task(self, record: dict) -> dict:
        self._put("task", record, only_new=True)
        return self.get_task(record["id"])

    def update_task(self, task_id: str, fields: dict) -> None:
        current = self.get_task(task_id)
        if current is None or not fields:
            return
        update = self._update("task", f"task#{task_id}", fields, {**current, **fields})
        from botocore.exceptions import ClientError

        try:
            self.client.update_item(**update)
        except ClientError as error:
            if not aws.is_error(error, "ConditionalCheckFailedException"):  # deleted meanwhile: like SQLite, no-op
                raise aws.translate(error, f"update task {task_id}") from error

    def get_task(self, task_id: str) -> dict | None:
        item = self._get(f"task#{task_id}")
        return self._record("task", item) if item else None

    def list_tasks(self, evolution_id=None, since=None, statuses=None, limit=None) -> list[dict]:
        filters = None
        if statuses:
            values = {f":s{i}": {"S": s} for i, s in enumerate(statuses)}
            filters = (f"#status IN ({', '.join(values)})", {"#status": "status"}, values)
        if evolution_id:
            items = self._query(BY_PARENT, "parent", f"evolution#{evolution_id}", lower=since, filters=filters,
                                limit=limit)
        else:
            items = self._query(BY_TIME, "rtype", "task", lower=since, descending=True, filters=filters, limit=limit)
        return [self._record("task", item) for item in items]

    # ---- spans and patterns ---------------------------------------------------------------------------
    def add_span(self, record: dict) -> None:
        self._put("span", record)

    def list_spans(self, trace_id: str) -> list[dict]:
        return [self._record("span", item) for item in self._query(BY_PARENT, "parent", f"trace#{trace_id}")]

    def put_pattern(self, record: dict) -> None:
        self._put("pattern", record)

    def list_patterns(self, kind=None) -> list[dict]:
        filters = ("#k = :k", {"#k": "kind"}, {":k": {"S": kind}}) if kind else None
        return [self._record("pattern", item) for item in self._query(BY_TIME, "rtype", "pattern", filters=filters)]

    # ---- meta -----------------------------------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        item = self._get(f"meta#{key}")
        return json.loads(item["value"]["S"]) if item else default

    def set_meta(self, key: str, value) -> None:
        item = {"pk": {"S": f"meta#{key}"}, "rtype": {"S": "meta"}, "ts": {"S": key},
                "key": {"S": key}, "value": {"S": json.dumps(value)}}
        with aws.aws_errors(f"write {key} to {self.table}"):
            self.client.put_item(TableName=self.table, Item=item)

    def delete_meta(self, key: str) -> None:
        with aws.aws_errors(f"delete {key} from {self.table}"):
            self.client.delete_item(TableName=self.table, Key={"pk": {"S": f"meta#{key}"}})

    # ---- claims ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self, name: str, seconds: float) -> Iterator[None]:
        """An item `claim#<name>` naming this process, written only where none is (or the one there lapsed or
        names a process proven gone from this host); deleted at the end, only if it is still ours."""
        key = f"claim#{name}"
        me = {"host": socket.gethostname(), "pid": os.getpid(), "pid_started_at": procs.start_stamp(os.getpid()),
              "since": iso(), "expires": time.time() + seconds}
        self._claim(key, name, me)
        try:
            yield
        finally:
            self._conditional("delete_item", key, "#pid = :pid AND #host = :host",
                              {"#pid": "pid", "#host": "host"},
                              {":pid": {"N": str(me["pid"])}, ":host": {"S": me["host"]}})

    def _claim(self, key: str, name: str, me: dict) -> None:
        item = {"pk": {"S": key}, **{field: _to_attr(field, value) for field, value in me.items() if value}}
        if self._conditional("put_item", key, "attribute_not_exists(pk) OR #expires < :now", {"#expires": "expires"},
                             {":now": _to_attr("expires", time.time())}, item):
            return
        holder = {f: _from_attr(f, v) for f, v in (self._get(key) or {}).items() if f != "pk"}
        if not holder:  # released meanwhile
            return self._claim(key, name, me)
        state, _ = procs.identify(holder.get("pid"), started=holder.get("pid_started_at"), host=holder.get("host"),
                                  what=f"{name} process")
        if state in (procs.GONE, procs.OTHER) and self._conditional(
                "put_item", key, "#pid = :pid AND #since = :since", {"#pid": "pid", "#since": "since"},
                {":pid": _to_attr("pid", holder["pid"]), ":since": _to_attr("since", holder["since"])}, item):
            return
        lapse = datetime.fromtimestamp(float(holder.get("expires") or 0), UTC).isoformat(timespec="seconds")
        raise Conflict(f"a {name} is already running on host {holder.get('host')} (pid {holder.get('pid')}, since "
                       f"{holder.get('since')}); this {name} changed nothing",
                       f"wait for it to finish, then run this again (a claim never released lapses at {lapse})")

    def _conditional(self, action: str, key: str, condition: str, names: dict, values: dict,
                     item: dict | None = None) -> bool:
        """One conditional put or delete of the item `key`; False when the condition did not hold."""
        from botocore.exceptions import ClientError

        params = {"TableName": self.table, "ConditionExpression": condition, "ExpressionAttributeNames": names,
                  "ExpressionAttributeValues": values}
        params.update({"Item": item} if item else {"Key": {"pk": {"S": key}}})
        try:
            getattr(self.client, action)(**params)
        except ClientError as error:
            if aws.is_error(error, "ConditionalCheckFailedException"):
                return False
            raise aws.translate(error, f"write {key} to {self.table}") from error
        return True

    # ---- export / import ------------------------------------------------------------------------------
    def export_records(self):
        for kind in FIELDS:
            for item in self._query(BY_TIME, "rtype", kind):
                yield kind, self._record(kind, item)
        for item in self._query(BY_TIME, "rtype", "meta"):
            yield "meta", {"key": item["key"]["S"], "value": json.loads(item["value"]["S"])}

    def import_records(self, records) -> int:
        count = 0
        for kind, record in records:
            if kind == "meta":
                self.set_meta(record["key"], record["value"])
            else:
                self._put(kind, record)
                if kind == "evolution" and record.get("status") in ACTIVE:
                    with aws.aws_errors(f"write to {self.table}"):
                        self.client.put_item(TableName=self.table, Item={
                            "pk": {"S": self._lock_key(record["target"])}, "evolution_id": {"S": record["id"]}})
            count += 1
        return count

    # ---- housekeeping -----------------------------------------------------------------------------------
    def counts(self) -> dict:
        tables = {"evolution": "evolutions", "task": "tasks", "span": "spans", "pattern": "patterns", "meta": "meta"}
        counts = {}
        for kind, name in tables.items():
            params = {"TableName": self.table, "IndexName": BY_TIME, "KeyConditionExpression": "#k = :k",
                      "ExpressionAttributeNames": {"#k": "rtype"}, "ExpressionAttributeValues": {":k": {"S": kind}},
                      "Select": "COUNT"}
            with aws.aws_errors(f"count {name} in {self.table}"):
                counts[name] = sum(p.get("Count", 0) for p in self.client.get_paginator("query").paginate(**params))
        return counts

    def check(self) -> str:
        with aws.aws_errors(f"describe {self.table}"):
            status = self.client.describe_table(TableName=self.table)["Table"].get("TableStatus")
        return "ok" if status == "ACTIVE" else f"table {self.table} is {status}"
