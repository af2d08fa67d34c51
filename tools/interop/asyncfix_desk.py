#!/usr/bin/env python3
"""The quant desk's FIX 4.4 session against AAITI, driven by asyncfix, a FIX engine not
written here.

usage: asyncfix_desk.py --port PORT [--host 127.0.0.1] [--journal-dir DIR] [--verbose]
                        [--timeout 50] [--step-timeout 10] [--book-timeout 20]

Needs asyncfix 1.0.1 exactly: `python3 tools/scripts/python_env.py` prints a python that
has it. The defaults are the demo session of config/default.toml: SenderCompID DESK,
TargetCompID AAITI, Username (553) `desk`, Password (554) `desk-demo`, account `desk-1`,
BTCUSDT on binance. Safe to run again against the same engine (ClOrdIDs are new each run,
positions are compared before and after).

asyncfix does the session (logon, numbers, resend, gap fill), the codec, the journal (an
SQLite file) and the order state (`FIXNewOrderSingle`, fed every ExecutionReport). The
scenario:

 1. Logon: `on_connect` sends 35=A with 98=0, 108, 141=Y, 553, 554 (asyncfix's numbers are
    reset to match).
 2. MarketDataRequest V (263=1, 264=5, 265=1, 267 group 269=0/1, 146 group 55/207): a W
    with bid and offer levels, then an X; unsubscribe (263=2): no X after it.
 3. RequestForPositions AN (the position before trading).
 4. A limit buy 50 below the best bid, GTC: New. OrderStatusRequest H: 150=I, 39=0, the
    order's terms, 790 echoed. Replace G (new price, Account and TimeInForce restated):
    Replaced. Cancel F: Canceled. H for the canceled order, by the ClOrdID of the
    cancel and by the one before it: 39=4.
 5. A market buy, IOC: Filled. AN again: the position grew by the fill.
 6. Logout: the engine answers with a Logout.
 7. Reconnect from the same journal file with new client objects (a restart of the desk's
    process): no reset, the numbers go on. Two gaps are made on purpose. Ours: the next
    outgoing number is bumped by 3 (three messages sent and lost before the journal kept
    them): the engine accepts the Logon, sends a ResendRequest, asyncfix answers with a
    SequenceReset-GapFill (its journal has nothing to resend). The engine's: asyncfix's
    expected incoming number is set back to the last PositionReport, so asyncfix sends a
    ResendRequest and the engine resends the report (PossDupFlag, OrigSendingTime) and
    gap-fills its session messages. An H then works both ways.
 8. A lost application message: an H is numbered and journaled as `send_msg` does but
    never written to the socket; the next H arrives with a gap, the engine asks for both
    again, asyncfix resends them from its journal and the engine answers both. Done
    twice: with asyncfix's resend as it is (an observation, see below) and with the
    header fields moved into the header (a check).
 9. Logout.

Output: one JSON object on stdout, {"ok", "asyncfix", "checks": [{"check", "ok", "t",
...}], "observations": [...], "failed": first hard failure or null}, `t` being seconds
since the start. A failed check that later steps do not depend on (the status report's
contents, the unsubscribe) is recorded and the scenario goes on; one they depend on stops
it. Exit status 0 only when every check passed, 1 otherwise, 2 when asyncfix 1.0.1 is
missing. With --verbose, asyncfix's debug log (every message, both ways) goes to stderr.

Adaptations to asyncfix 1.0.1 (see the classes): its FIX 4.4 table lacks the market data
groups (added in `DeskProtocol`); its order model writes floats and leaves 207, 59 and, in
a G, Account out (`DeskOrder`); it has no hook for inbound session messages (the client
wraps its dispatcher to record them) and no close (the client cancels its tasks). Found in
asyncfix, reported as observations: it writes PossDupFlag/OrigSendingTime after the body
when it resends (a strict acceptor rejects that, 373=14), and it does not count the
peer's Logout in its journal.
"""
import argparse
import asyncio
import importlib.metadata
import json
import logging
import math
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal

ASYNCFIX_VERSION = "1.0.1"

try:
    if importlib.metadata.version("asyncfix") != ASYNCFIX_VERSION:
        raise ImportError(f"found asyncfix {importlib.metadata.version('asyncfix')}")
    from asyncfix import AsyncFIXClient, FIXMessage, FMsg, FTag, Journaler
    from asyncfix.codec import Codec
    from asyncfix.connection import ConnectionState
    from asyncfix.message import MessageDirection
    from asyncfix.protocol import (
        FExecType,
        FIXNewOrderSingle,
        FIXProtocol44,
        FOrdSide,
        FOrdStatus,
        FOrdType,
    )
except ImportError as error:  # PackageNotFoundError is an ImportError too
    print(
        f"asyncfix_desk: needs asyncfix=={ASYNCFIX_VERSION} ({error}); run "
        "`python3 tools/scripts/python_env.py` and use the python it prints",
        file=sys.stderr,
    )
    sys.exit(2)


class CheckFailed(Exception):
    """A check failed and the scenario cannot go on: `name` and what was seen instead."""

    def __init__(self, name, detail):
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


class DeskProtocol(FIXProtocol44):
    """FIX 4.4 as asyncfix ships it plus the market data groups (267, 146, 268), which its
    table lacks: without them the repeated 269/270/271 of a W or X decode as errors."""

    repeating_groups = {
        **FIXProtocol44.repeating_groups,
        FTag.NoMDEntryTypes: [FTag.MDEntryType],
        FTag.NoRelatedSym: [FTag.Symbol, FTag.SecurityExchange],
        FTag.NoMDEntries: [
            FTag.MDUpdateAction,
            FTag.MDEntryType,
            FTag.Symbol,
            FTag.SecurityExchange,
            FTag.MDEntryPx,
            FTag.MDEntrySize,
        ],
    }


class DeskOrder(FIXNewOrderSingle):
    """asyncfix's order model with what AAITI needs on top: SecurityExchange (207),
    TimeInForce (59), prices and quantities as exact decimal strings, and a replace that
    restates Account and TimeInForce (asyncfix's G leaves them out; a FIX 4.4 G restates
    the whole order, and an absent 59 means Day)."""

    def __init__(self, clord_id, symbol, exchange, side, price, qty, ord_type, account, tif):
        super().__init__(clord_id, symbol, side, price, qty, ord_type=ord_type, account=account)
        self.exchange = exchange
        self.tif = tif

    def set_instrument(self, ord_msg):
        ord_msg[FTag.Symbol] = self.ticker
        ord_msg[FTag.SecurityExchange] = self.exchange

    def set_price_qty(self, ord_msg, price, qty):
        # Decimal, never float: str(float) can give 1e-05 or 61687.630000000005, which an
        # exact parser refuses.
        if self.ord_type != FOrdType.MARKET:
            ord_msg[FTag.Price] = str(price)
        ord_msg[FTag.OrderQty] = str(qty)

    def new_req(self):
        msg = super().new_req()
        msg[FTag.TimeInForce] = self.tif
        return msg

    def replace_req(self, price=math.nan, qty=math.nan):
        msg = super().replace_req(price, qty)
        msg[FTag.Account] = self.account
        msg[FTag.TimeInForce] = self.tif
        return msg


class DeskClient(AsyncFIXClient):
    """The desk's initiator: logs on with Username/Password, queues application messages
    (`inbox`), and records what it receives (`tap`) and sends (`sent`)."""

    def __init__(self, journaler, args, reset, log):
        super().__init__(
            DeskProtocol(),
            args.sender,
            args.target,
            journaler,
            args.host,
            args.port,
            heartbeat_period=args.heartbeat,
            logger=log,
        )
        self.journaler = journaler
        self.args = args
        self.reset = reset
        self.inbox = asyncio.Queue()
        self.tap = []
        self.sent = []
        self.active = asyncio.Event()
        self.logged_out = asyncio.Event()
        self.logout_msg = None
        self.fix_resend_header = True

    async def send_msg(self, msg):
        # asyncfix 1.0.1 resends a message by adding PossDupFlag (43) and OrigSendingTime
        # (122) at the end of the decoded message, so they are written after the body;
        # FIX 4.4 has them in the standard header, and a strict acceptor rejects the
        # message (373=14). Moved first, they follow asyncfix's 49/56/34/52.
        if self.fix_resend_header and msg.get(FTag.PossDupFlag, "N") == "Y":
            for tag in (FTag.OrigSendingTime, FTag.PossDupFlag):
                if tag in msg:
                    msg.tags.move_to_end(str(tag), last=False)
        await super().send_msg(msg)
        # By type and fields: the number is only in the journal, which asyncfix rewrites
        # when it fills a gap.
        self.sent.append((time.monotonic(), msg))

    # asyncfix calls on_message only for application messages (and Reject 3); session
    # messages (ResendRequest, SequenceReset, Logon) have no hook, so the dispatcher is
    # wrapped to record them. It only records: asyncfix handles every message as usual.
    async def _process_message(self, msg, raw_msg):
        self.tap.append((time.monotonic(), msg))
        await super()._process_message(msg, raw_msg)

    async def on_connect(self):
        logon = FIXMessage(FMsg.LOGON)
        logon[FTag.EncryptMethod] = "0"
        logon[FTag.HeartBtInt] = self.args.heartbeat
        if self.reset:
            logon[FTag.ResetSeqNumFlag] = "Y"
        logon[FTag.Username] = self.args.username
        logon[FTag.Password] = self.args.password
        await self.send_msg(logon)

    async def on_state_change(self, connection_state):
        if connection_state == ConnectionState.ACTIVE:
            self.active.set()
        else:
            self.active.clear()

    async def on_message(self, msg):
        self.inbox.put_nowait((time.monotonic(), msg))

    async def on_logout(self, msg):
        self.logout_msg = msg
        self.logged_out.set()

    def session(self):
        """asyncfix's session object (its sequence numbers), which it keeps private."""
        return self._session

    def send_lost(self, msg):
        """Numbers and journals `msg` as `send_msg` does, but never writes it: a message
        lost on the way to the engine. Returns its MsgSeqNum."""
        raw = self._codec.encode(msg, self._session).encode("utf-8")
        self.journaler.persist_msg(raw, self._session, MessageDirection.OUTBOUND)
        return Journaler.find_seq_no(raw)

    async def close(self):
        """Stops asyncfix's reader and heartbeat tasks (it has no public close; left
        running, the reader reconnects on its own) and closes the journal's database."""
        if self._socket_writer is not None:
            await self.disconnect(ConnectionState.DISCONNECTED_BROKEN_CONN)
        tasks = [t for t in (self._aio_task_socket_read, self._aio_task_heartbeat) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.journaler.conn.commit()
        self.journaler.conn.close()


def get(msg, tag):
    """A simple field's value, or None (absent, a group, or repeated)."""
    try:
        return msg.get(tag, None)
    except Exception:
        return None


def brief(msg):
    """A message in one line, for failure details."""
    return f"35={msg.msg_type}|{msg}"[:400]


def mtype(msg):
    return str(msg.msg_type)


def is_status_report(msg, order):
    return (mtype(msg) == "8" and get(msg, FTag.ExecType) == FExecType.ORDER_STATUS
            and get(msg, FTag.OrderID) == order.order_id)


def utc(fmt):
    return datetime.now(timezone.utc).strftime(fmt)


# Answers that end a wait at once: nothing in the scenario should be rejected.
FAIL_FAST = {"3", "j", "Y", "9"}


class Scenario:
    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.started = time.monotonic()
        self.checks = []
        self.observations = []
        self.journal_path = os.path.join(args.journal_dir, "desk-journal.sqlite")
        # ClOrdIDs must be new to the engine, also when this runs again against the same
        # (long-running) engine.
        self.run_id = format(time.time_ns() // 1_000_000, "x")[-8:]

    # --- checks --------------------------------------------------------------------------

    def elapsed(self):
        return round(time.monotonic() - self.started, 3)

    def ok(self, name, **detail):
        self.checks.append({"check": name, "ok": True, "t": self.elapsed(), **detail})
        self.log.info("check ok: %s %s", name, detail)

    def check(self, condition, name, detail, **ok_detail):
        """A check later steps do not depend on: recorded, and the scenario goes on."""
        if condition:
            self.ok(name, **ok_detail)
        else:
            self.checks.append({"check": name, "ok": False, "t": self.elapsed(),
                                "detail": detail})
            self.log.error("check FAILED: %s %s", name, detail)
        return condition

    def require(self, condition, name, detail):
        """A check later steps depend on: a failure ends the scenario."""
        if not condition:
            raise CheckFailed(name, detail)

    def observe(self, name, what):
        """An interoperability finding that is not a pass/fail check."""
        self.observations.append({"observation": name, "t": self.elapsed(), "what": what})
        self.log.info("observed: %s: %s", name, what)

    # --- waiting -------------------------------------------------------------------------

    async def wait_event(self, event, name, detail):
        try:
            await asyncio.wait_for(event.wait(), self.args.step_timeout)
        except asyncio.TimeoutError:
            raise CheckFailed(name, detail() if callable(detail) else detail)

    async def wait_for(self, found):
        """Polls `found()` until it returns something true or the step times out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.step_timeout
        while True:
            result = found()
            if result or loop.time() >= deadline:
                return result
            await asyncio.sleep(0.02)

    async def expect(self, client, name, accept, timeout=None, fail_fast=FAIL_FAST):
        """The next application message `accept` takes; skips others (market data, reports
        not asked for) and fails at once on a reject."""
        timeout = timeout or self.args.step_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = []
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise CheckFailed(name, {"timeout_s": timeout, "other_messages": seen[-6:]})
            try:
                _, msg = await asyncio.wait_for(client.inbox.get(), left)
            except asyncio.TimeoutError:
                continue
            if accept(msg):
                return msg
            if mtype(msg) in fail_fast:
                raise CheckFailed(name, {"rejected": brief(msg)})
            if mtype(msg) not in ("W", "X"):
                seen.append(brief(msg))

    async def order_until(self, client, order, name, done):
        """Feeds the order's ExecutionReports to asyncfix's order model until `done`."""

        def mine(msg):
            if mtype(msg) != "8" or get(msg, FTag.ExecType) == FExecType.ORDER_STATUS:
                return False
            return get(msg, FTag.ClOrdID) in (order.clord_id, order.orig_clord_id)

        while True:
            msg = await self.expect(client, name, mine)
            if get(msg, FTag.ExecType) == FExecType.REJECTED:
                raise CheckFailed(name, {"rejected": brief(msg)})
            order.process_execution_report(msg)
            if done(order, msg):
                return msg

    # --- requests ------------------------------------------------------------------------

    def journal(self, client, direction):
        """Decoded messages of one direction from asyncfix's journal, in order."""
        codec = Codec(DeskProtocol())
        out = []
        for _, raw, _, _ in client.journaler.get_all_msgs(direction=direction):
            msg, _, _ = codec.decode(bytes(raw))
            if msg is not None:
                out.append(msg)
        return out

    def new_client(self, reset):
        return DeskClient(Journaler(self.journal_path), self.args, reset, self.log)

    async def logon(self, client, name):
        await client.connect()
        if client.connection_state <= ConnectionState.DISCONNECTED_BROKEN_CONN:
            raise CheckFailed(name, f"cannot connect to {self.args.host}:{self.args.port}")

        def why():
            if client.logout_msg is not None:
                return {"logout": brief(client.logout_msg)}
            return {"state": client.connection_state.name,
                    "received": [brief(m) for _, m in client.tap[-6:]]}

        await self.wait_event(client.active, name, why)

    def status_request(self, order, req_id):
        """An OrderStatusRequest naming the order as asyncfix knows it (37 and 11)."""
        msg = FIXMessage(FMsg.ORDERSTATUSREQUEST)
        msg[FTag.OrderID] = order.order_id
        msg[FTag.ClOrdID] = order.clord_id
        msg[FTag.Symbol] = self.args.symbol
        msg[FTag.SecurityExchange] = self.args.exchange
        msg[FTag.Side] = order.side
        msg[FTag.OrdStatusReqID] = req_id
        return msg

    async def status(self, client, order, req_id, name):
        """Sends an H; the answer (a 150=I report or, not failing at once, a reject)."""
        await client.send_msg(self.status_request(order, req_id))
        return await self.expect(
            client, name,
            lambda m: is_status_report(m, order)
            or (mtype(m) in ("j", "3") and get(m, FTag.RefMsgType) == "H"),
            fail_fast=set())

    async def positions(self, client, req_id):
        """The net position in the instrument from a RequestForPositions: AO, then APs."""
        args = self.args
        request = FIXMessage(FMsg.REQUESTFORPOSITIONS)
        request[FTag.PosReqID] = req_id
        request[FTag.PosReqType] = "0"
        request[FTag.Account] = args.account
        request[FTag.AccountType] = "1"
        request[FTag.Symbol] = args.symbol
        request[FTag.SecurityExchange] = args.exchange
        request[FTag.ClearingBusinessDate] = utc("%Y%m%d")
        request[FTag.TransactTime] = utc("%Y%m%d-%H:%M:%S.%f")[:-3]
        await client.send_msg(request)
        name = f"positions {req_id}"
        ack = await self.expect(
            client, name, lambda m: mtype(m) == "AO" and get(m, FTag.PosReqID) == req_id)
        self.require(get(ack, FTag.PosReqResult) in ("0", "2")
                     and get(ack, FTag.PosReqStatus) == "0", name, {"ack": brief(ack)})
        total = int(get(ack, FTag.TotalNumPosReports) or "0")
        net = Decimal(0)
        for _ in range(total):
            report = await self.expect(
                client, name, lambda m: mtype(m) == "AP" and get(m, FTag.PosReqID) == req_id)
            self.require(get(report, FTag.Symbol) == args.symbol
                         and get(report, FTag.Account) == args.account,
                         name, {"report": brief(report)})
            qty = report.get_group_list(FTag.NoPositions)[0]
            net += Decimal(qty[FTag.LongQty]) - Decimal(qty[FTag.ShortQty])
        return total, net

    # --- the scenario --------------------------------------------------------------------

    async def run(self):
        if os.path.exists(self.journal_path):
            os.remove(self.journal_path)
        first = self.new_client(reset=True)
        try:
            await self.first_session(first)
        finally:
            await first.close()
        # The same journal file, new objects.
        second = self.new_client(reset=False)
        try:
            await self.second_session(second)
        finally:
            await second.close()

    async def first_session(self, c1):
        args = self.args
        # 1. Logon.
        await c1.reset_seq_num()
        await self.logon(c1, "logon")
        engine_logon = [m for _, m in c1.tap if mtype(m) == "A"][-1]
        self.require(get(engine_logon, FTag.ResetSeqNumFlag) == "Y"
                     and get(engine_logon, FTag.MsgSeqNum) == "1",
                     "logon", {"engine_logon": brief(engine_logon)})
        self.ok("logon", reset=True)

        # 2. Market data.
        def md_request(subscription):
            msg = FIXMessage(FMsg.MARKETDATAREQUEST)
            msg[FTag.MDReqID] = "md-1"
            msg[FTag.SubscriptionRequestType] = subscription
            msg[FTag.MarketDepth] = "5"
            if subscription == "1":
                msg[FTag.MDUpdateType] = "1"
            msg.set_group(FTag.NoMDEntryTypes,
                          [{FTag.MDEntryType: "0"}, {FTag.MDEntryType: "1"}])
            msg.set_group(FTag.NoRelatedSym,
                          [{FTag.Symbol: args.symbol, FTag.SecurityExchange: args.exchange}])
            return msg

        await c1.send_msg(md_request("1"))
        name = "market data snapshot (W) with levels"
        snapshot = await self.expect(
            c1, name,
            lambda m: mtype(m) == "W" and get(m, FTag.MDReqID) == "md-1"
            and bool(m.is_group(FTag.NoMDEntries)),
            timeout=args.book_timeout)
        entries = snapshot.get_group_list(FTag.NoMDEntries)
        bids = [e for e in entries if e[FTag.MDEntryType] == "0"]
        asks = [e for e in entries if e[FTag.MDEntryType] == "1"]
        bid_px = [Decimal(e[FTag.MDEntryPx]) for e in bids]
        ask_px = [Decimal(e[FTag.MDEntryPx]) for e in asks]
        self.require(
            get(snapshot, FTag.Symbol) == args.symbol and bids and asks
            and len(bids) <= 5 and len(asks) <= 5
            and bid_px == sorted(bid_px, reverse=True) and ask_px == sorted(ask_px)
            and bid_px[0] < ask_px[0]
            and all(Decimal(e[FTag.MDEntrySize]) > 0 for e in entries),
            name, {"snapshot": brief(snapshot)})
        best_bid = bid_px[0]
        self.ok(name, bids=len(bids), asks=len(asks), best_bid=str(best_bid),
                best_ask=str(ask_px[0]))

        def incremental(m):
            if (mtype(m) != "X" or get(m, FTag.MDReqID) != "md-1"
                    or not m.is_group(FTag.NoMDEntries)):
                return False
            return all(
                c[FTag.MDUpdateAction] in ("0", "1", "2") and c[FTag.MDEntryType] in ("0", "1")
                and c[FTag.Symbol] == args.symbol and Decimal(c[FTag.MDEntryPx]) > 0
                for c in m.get_group_list(FTag.NoMDEntries))

        name = "market data incremental refresh (X)"
        refresh = await self.expect(c1, name, incremental, timeout=args.book_timeout)
        self.ok(name, changes=len(refresh.get_group_list(FTag.NoMDEntries)))

        # A few more refreshes (the replayed book changes about ten times a second), then
        # the unsubscribe. The engine handles a session's messages in order, so whatever
        # it sends after answering the next request (the AO below) comes after the
        # unsubscribe took effect: no refresh may have a higher MsgSeqNum than that AO.
        def refreshes(after_seq=0):
            return [m for _, m in c1.tap if mtype(m) == "X" and get(m, FTag.MDReqID) == "md-1"
                    and int(get(m, FTag.MsgSeqNum)) > after_seq]

        flowing = len(await self.wait_for(lambda: len(refreshes()) >= 3 and refreshes()))
        await c1.send_msg(md_request("2"))

        # 3. The position before trading.
        _, net_before = await self.positions(c1, "pos-1")
        fence_at, fence_seq = next((t, int(get(m, FTag.MsgSeqNum))) for t, m in c1.tap
                                   if mtype(m) == "AO" and get(m, FTag.PosReqID) == "pos-1")

        # 4. A resting limit buy: New, status, replace, cancel, status.
        rest_px = best_bid - 50
        order = DeskOrder(f"lim-{self.run_id}", args.symbol, args.exchange, FOrdSide.BUY,
                          rest_px, Decimal("0.002"), FOrdType.LIMIT, args.account, "1")
        await c1.send_msg(order.new_req())
        name = "limit order New"
        new = await self.order_until(
            c1, order, name,
            lambda o, m: o.status == FOrdStatus.NEW and get(m, FTag.ExecType) == FExecType.NEW)
        self.require(
            (order.order_id or "").isdigit() and get(new, FTag.Account) == args.account
            and Decimal(get(new, FTag.Price)) == rest_px
            and Decimal(get(new, FTag.OrderQty)) == Decimal("0.002")
            and get(new, FTag.TimeInForce) == "1" and order.leaves_qty == 0.002,
            name, {"report": brief(new)})
        self.ok(name, clordid=order.clord_id, order_id=order.order_id, price=str(rest_px))

        name = "order status (H) of a live order"
        report = await self.status(c1, order, "st-1", name)
        self.require(is_status_report(report, order)
                     and get(report, FTag.OrdStatus) == FOrdStatus.NEW
                     and get(report, FTag.ClOrdID) == order.clord_id,
                     name, {"answer": brief(report)})
        self.ok(name, ord_status="0")
        terms = {"38": get(report, FTag.OrderQty), "40": get(report, FTag.OrdType),
                 "44": get(report, FTag.Price), "59": get(report, FTag.TimeInForce)}
        self.check(
            terms["40"] == "2" and terms["59"] == "1"
            and Decimal(terms["38"] or "0") == Decimal("0.002")
            and Decimal(terms["44"] or "0") == rest_px,
            "order status restates the order's terms (38, 40, 44, 59)",
            {"expected": {"38": "0.002", "40": "2", "44": str(rest_px), "59": "1"},
             "got": terms, "report": brief(report)})
        self.check(get(report, FTag.OrdStatusReqID) == "st-1",
                   "order status echoes OrdStatusReqID (790)",
                   {"expected": "st-1", "report": brief(report)})

        new_px = best_bid - 60
        old_clord = order.clord_id
        await c1.send_msg(order.replace_req(price=new_px))
        name = "replace (G) Replaced"
        replaced = await self.order_until(
            c1, order, name, lambda o, m: get(m, FTag.ExecType) == FExecType.REPLACED)
        self.require(
            order.status == FOrdStatus.NEW and order.price == float(new_px)
            and get(replaced, FTag.OrigClOrdID) == old_clord
            and get(replaced, FTag.ClOrdID) == order.clord_id
            and get(replaced, FTag.OrderID) == order.order_id
            and get(replaced, FTag.TimeInForce) == "1",
            name, {"report": brief(replaced), "order": repr(order)})
        self.ok(name, clordid=order.clord_id, price=str(new_px))

        await c1.send_msg(order.cancel_req())
        name = "cancel (F) Canceled"
        canceled = await self.order_until(c1, order, name, lambda o, m: o.is_finished())
        self.require(order.status == FOrdStatus.CANCELED and order.leaves_qty == 0
                     and get(canceled, FTag.ExecType) == FExecType.CANCELED,
                     name, {"report": brief(canceled), "order": repr(order)})
        self.ok(name, clordid=order.clord_id)

        report = await self.status(c1, order, "st-2", "order status (H) of a canceled order")
        self.check(is_status_report(report, order)
                   and get(report, FTag.OrdStatus) == FOrdStatus.CANCELED
                   and Decimal(get(report, FTag.LeavesQty) or "-1") == 0,
                   "order status (H) of a canceled order",
                   {"expected": "150=I 39=4 151=0", "asked_with": {"37": order.order_id,
                                                                    "11": order.clord_id},
                    "answer": brief(report)},
                   ord_status="4")
        # The same order named by the ClOrdID it had before the cancel (41 of the
        # Canceled report), as a desk that missed the cancel's answer would.
        previous = DeskOrder(order.clord_id_root, args.symbol, args.exchange, order.side,
                             order.price, order.qty, order.ord_type, args.account, order.tif)
        previous.order_id, previous.clord_id = order.order_id, order.orig_clord_id
        report = await self.status(c1, previous, "st-2b",
                                   "order status (H) of a canceled order, by its previous ClOrdID")
        self.check(is_status_report(report, previous)
                   and get(report, FTag.OrdStatus) == FOrdStatus.CANCELED,
                   "order status (H) of a canceled order, by its previous ClOrdID",
                   {"expected": "150=I 39=4", "asked_with": {"37": previous.order_id,
                                                             "11": previous.clord_id},
                    "answer": brief(report)},
                   ord_status="4")

        # 5. A marketable order fills; the position moves by the fill.
        market = DeskOrder(f"mkt-{self.run_id}", args.symbol, args.exchange, FOrdSide.BUY,
                           None, Decimal("0.001"), FOrdType.MARKET, args.account, "3")
        await c1.send_msg(market.new_req())
        name = "market order Filled"
        filled = await self.order_until(c1, market, name, lambda o, m: o.is_finished())
        self.require(
            market.status == FOrdStatus.FILLED
            and Decimal(get(filled, FTag.CumQty)) == Decimal("0.001")
            and get(filled, FTag.ExecType) == FExecType.TRADE
            and Decimal(get(filled, FTag.LastPx) or "0") > 0
            and Decimal(get(filled, FTag.AvgPx)) > 0,
            name, {"report": brief(filled), "order": repr(market)})
        self.ok(name, clordid=market.clord_id, last_px=get(filled, FTag.LastPx))
        self.filled = market

        total, net_after = await self.positions(c1, "pos-2")
        self.require(total == 1 and net_after - net_before == Decimal("0.001"),
                     "positions (AN) show the fill",
                     {"before": str(net_before), "after": str(net_after), "reports": total})
        self.ok("positions (AN) show the fill", before=str(net_before), after=str(net_after))
        self.last_report_seq = max(int(get(m, FTag.MsgSeqNum)) for _, m in c1.tap
                                   if mtype(m) == "AP" and get(m, FTag.PosReqID) == "pos-2")

        # No refresh after the fence, watched for at least a second.
        await asyncio.sleep(max(0.0, fence_at + 1.0 - time.monotonic()))
        late = refreshes(after_seq=fence_seq)
        self.check(flowing >= 3 and not late, "market data unsubscribe (263=2)",
                   {"refreshes_before": flowing, "fence_seq": fence_seq,
                    "refreshes_after": [brief(m) for m in late[:3]]},
                   refreshes_before=flowing)

        # 6. Logout.
        await c1.send_msg(FIXMessage(FMsg.LOGOUT))
        await self.wait_event(c1.logged_out, "logout", "no Logout answered ours")
        text = get(c1.logout_msg, FTag.Text) or ""
        self.require("too low" not in text, "logout", {"logout": brief(c1.logout_msg)})
        self.sent_first = c1.session().next_num_out - 1
        self.engine_logout_seq = int(get(c1.logout_msg, FTag.MsgSeqNum))
        self.ok("logout", sent=self.sent_first)

    async def second_session(self, c2):
        session = c2.session()
        # 7. asyncfix's journal is on file: the numbers go on.
        self.require(session.next_num_out == self.sent_first + 1,
                     "journal continues the numbers",
                     {"next_out": session.next_num_out, "sent_before": self.sent_first})
        self.ok("journal continues the numbers", next_out=session.next_num_out)
        if session.next_num_in == self.engine_logout_seq:
            self.observe(
                "asyncfix does not count the peer's Logout",
                f"its journal expects {session.next_num_in}, the number of the engine's "
                "Logout, next; at the next logon it asks for it again (harmless: the "
                "engine gap-fills it)")

        # Our gap: three numbers skipped. The engine's: asyncfix forgets everything from
        # the last PositionReport on.
        expected_by_engine = session.next_num_out
        c2.journaler.set_seq_num(session, next_num_out=expected_by_engine + 3,
                                 next_num_in=self.last_report_seq)
        name = "reconnect: logon with a sequence gap"
        await self.logon(c2, name)
        logons = [m for _, m in c2.tap if mtype(m) == "A"]
        self.require(logons and int(get(logons[0], FTag.MsgSeqNum)) > self.engine_logout_seq
                     and get(logons[0], FTag.ResetSeqNumFlag) != "Y",
                     name, {"engine_logon": [brief(m) for m in logons]})
        self.ok(name, our_logon_seq=expected_by_engine + 3,
                engine_logon_seq=int(get(logons[0], FTag.MsgSeqNum)))

        name = "engine asks for our gap (ResendRequest)"
        asked = await self.wait_for(lambda: [
            m for _, m in c2.tap
            if mtype(m) == "2" and get(m, FTag.BeginSeqNo) == str(expected_by_engine)])
        self.require(asked, name, {"expected_7": expected_by_engine,
                                   "received": [brief(m) for _, m in c2.tap[-8:]]})
        self.ok(name, begin=expected_by_engine)

        name = "asyncfix fills the gap (SequenceReset-GapFill)"
        fills = [m for m in self.journal(c2, MessageDirection.OUTBOUND)
                 if mtype(m) == "4" and get(m, FTag.GapFillFlag) == "Y"
                 and get(m, FTag.MsgSeqNum) == str(expected_by_engine)]
        self.require(fills, name, {"sent": [brief(m) for _, m in c2.sent]})
        self.ok(name, new_seq_no=get(fills[0], FTag.NewSeqNo))

        name = "asyncfix asks for the engine's gap (ResendRequest)"
        ours = [m for _, m in c2.sent
                if mtype(m) == "2" and get(m, FTag.BeginSeqNo) == str(self.last_report_seq)]
        self.require(ours, name, {"sent": [brief(m) for _, m in c2.sent]})
        self.ok(name, begin=self.last_report_seq)

        name = "engine resends its report (PossDupFlag) and gap-fills the rest"
        resent = await self.expect(
            c2, name, lambda m: mtype(m) == "AP" and get(m, FTag.PosReqID) == "pos-2")
        engine_fills = await self.wait_for(lambda: [
            m for _, m in c2.tap if mtype(m) == "4" and get(m, FTag.GapFillFlag) == "Y"])
        self.require(get(resent, FTag.PossDupFlag) == "Y"
                     and get(resent, FTag.OrigSendingTime) is not None
                     and get(resent, FTag.MsgSeqNum) == str(self.last_report_seq)
                     and engine_fills,
                     name, {"report": brief(resent),
                            "gap_fills": [brief(m) for m in engine_fills]})
        self.ok(name, report_seq=self.last_report_seq,
                gap_fill_to=get(engine_fills[-1], FTag.NewSeqNo))

        name = "order status after the gaps are filled"
        report = await self.status(c2, self.filled, "st-3", name)
        self.require(is_status_report(report, self.filled)
                     and get(report, FTag.OrdStatus) == FOrdStatus.FILLED,
                     name, {"answer": brief(report)})
        self.ok(name, ord_status="2")

        # 8. A lost application message, resent by asyncfix as it is (43/122 after the
        # body): an observation, since the FIX rules on header order are the sender's to
        # keep; the engine may reject or accept such a message.
        c2.fix_resend_header = False
        self.observe("asyncfix's own resend (43/122 after the body)",
                     await self.lost_and_resent(c2, "st-4", "st-5"))

        # The same with the header fields where FIX 4.4 has them: a check.
        c2.fix_resend_header = True
        outcome = await self.lost_and_resent(c2, "st-6", "st-7")
        self.require(outcome == "both answered",
                     "a lost message is resent (PossDupFlag) and answered",
                     {"outcome": outcome})
        resent = [m for m in self.journal(c2, MessageDirection.OUTBOUND)
                  if get(m, FTag.PossDupFlag) == "Y"
                  and int(get(m, FTag.MsgSeqNum)) in (self.lost, self.lost + 1)]
        self.require(len(resent) == 2 and all(get(m, FTag.OrigSendingTime) for m in resent),
                     "a lost message is resent (PossDupFlag) and answered",
                     {"resent": [brief(m) for m in resent]})
        self.ok("a lost message is resent (PossDupFlag) and answered", lost_seq=self.lost)

        # 9. Logout.
        name = "logout after the reconnect"
        await c2.send_msg(FIXMessage(FMsg.LOGOUT))
        await self.wait_event(c2.logged_out, name, "no Logout answered ours")
        self.require("too low" not in (get(c2.logout_msg, FTag.Text) or ""),
                     name, {"logout": brief(c2.logout_msg)})
        self.ok(name)

    async def lost_and_resent(self, client, lost_id, next_id):
        """Loses one status request and sends the next; after the engine's ResendRequest
        and asyncfix's resend, says what became of the two ("both answered", or the
        session Rejects)."""
        self.lost = client.send_lost(self.status_request(self.filled, lost_id))
        await client.send_msg(self.status_request(self.filled, next_id))
        name = "engine asks for a lost message (ResendRequest)"
        asked = await self.wait_for(lambda: [
            m for _, m in client.tap
            if mtype(m) == "2" and get(m, FTag.BeginSeqNo) == str(self.lost)])
        self.require(asked, name, {"lost_seq": self.lost,
                                   "received": [brief(m) for _, m in client.tap[-8:]]})
        answered, rejects = 0, []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.step_timeout
        while answered + len(rejects) < 2 and loop.time() < deadline:
            try:
                _, msg = await asyncio.wait_for(client.inbox.get(), deadline - loop.time())
            except asyncio.TimeoutError:
                break
            ref = get(msg, FTag.RefSeqNum)
            if mtype(msg) == "3" and ref in (str(self.lost), str(self.lost + 1)):
                rejects.append(
                    f"Reject of {ref}: 373={get(msg, FTag.SessionRejectReason)}"
                    f" 371={get(msg, FTag.RefTagID)} 58={get(msg, FTag.Text)}")
            elif is_status_report(msg, self.filled):
                answered += 1
        if answered == 2:
            return "both answered"
        return "; ".join(rejects + [f"{answered} answered"])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sender", default="DESK", help="our SenderCompID (49)")
    parser.add_argument("--target", default="AAITI", help="the engine's CompID (56)")
    parser.add_argument("--username", default="desk")
    parser.add_argument("--password", default="desk-demo")
    parser.add_argument("--account", default="desk-1")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--exchange", default="binance")
    parser.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt (108), s")
    parser.add_argument("--journal-dir",
                        help="where asyncfix's journal goes (default: a temporary directory)")
    parser.add_argument("--timeout", type=float, default=50.0, help="the whole scenario, s")
    parser.add_argument("--step-timeout", type=float, default=10.0, help="one answer, s")
    parser.add_argument("--book-timeout", type=float, default=20.0,
                        help="the first snapshot with levels, and the first refresh, s")
    parser.add_argument("--verbose", action="store_true",
                        help="asyncfix's debug log (every message) on stderr")
    return parser.parse_args(argv)


async def main_async(args, log):
    scenario = Scenario(args, log)
    failed = None
    try:
        await asyncio.wait_for(scenario.run(), args.timeout)
    except CheckFailed as error:
        failed = {"check": error.name, "t": scenario.elapsed(), "detail": error.detail}
    except asyncio.TimeoutError:
        failed = {"check": "whole scenario", "detail": f"not done within {args.timeout} s"}
    except Exception as error:  # asyncfix raising is a failure too, with its reason
        failed = {"check": "unexpected error", "detail": f"{type(error).__name__}: {error}"}
        log.exception("unexpected error")
    ok = failed is None and all(c["ok"] for c in scenario.checks)
    return {"ok": ok, "asyncfix": ASYNCFIX_VERSION, "checks": scenario.checks,
            "observations": scenario.observations, "failed": failed}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s",
                        level=logging.DEBUG if args.verbose else logging.WARNING)
    log = logging.getLogger("asyncfix_desk")
    with tempfile.TemporaryDirectory(prefix="asyncfix-desk-") as tmp:
        if args.journal_dir is None:
            args.journal_dir = tmp
        os.makedirs(args.journal_dir, exist_ok=True)
        summary = asyncio.run(main_async(args, log))
    print(json.dumps(summary, indent=1, default=str))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
