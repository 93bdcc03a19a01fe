#!/usr/bin/env python3
"""test_sim_wire.py: `plume sim` on the network, against a platform written here with the
Python standard library. The platform listens on 127.0.0.1 port 0, checks every packet's
framing and CRC (standard, lower case or MODBUS, as units send them), answers each upload
that asks (Flag bit A) with a proper 9014, asks one unit for history (CN=2061 with
BeginTime/EndTime) and another to set its clock (1012). Then it checks: the uploads are
byte for byte those of `plume sim --print` with the same options; every answer was counted;
the history request got 9011, the records, 9012; gaps made units hang up and come back;
the JSON summary agrees with what the platform saw.

    test_sim_wire.py PLUME
"""
import asyncio
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import plumetest as pt  # noqa: E402
from plumetest import check, crc16_modbus as crc_modbus, crc212 as crc_std, fields, frame  # noqa: E402

PLUME = pt.init(sys.argv[1])
ARGS = ['--facilities', '15', '--days', '1', '--seed', '5', '--minute-interval', '30',
        '--rate-gap', '0.6', '--share-2005', '0.2', '--share-modbus', '0.2',
        '--share-noack', '0.2']


class Platform:
    def __init__(self):
        self.uploads = []        # raw packets of live uploads
        self.history = []        # (mn, data_time) of uploads answering the history request
        self.answers = []        # (cn, qn, cp) of 9011/9012 answers
        self.acks = 0
        self.bad = 0
        self.connections = 0
        self.finished = 0        # connections read to their end
        self.hist_qn = None
        self.hist_mn = None
        self.clock_qn = None
        self.asked = False
        self.avoid = set()       # units with gaps: they may hang up on a request

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            await self.read_packets(reader, writer)
        finally:
            writer.close()
            self.finished += 1

    async def read_packets(self, reader, writer):
        buf = b''
        while True:
            data = await reader.read(65536)
            if not data:
                break
            buf += data
            while True:
                i = buf.find(b'##')
                if i < 0 or len(buf) < i + 6:
                    break
                size = int(buf[i + 2:i + 6])
                end = i + 6 + size + 6
                if len(buf) < end:
                    break
                pkt, seg, crc = buf[i:end], buf[i + 6:i + 6 + size], buf[i + 6 + size:end - 2]
                buf = buf[end:]
                c = int(crc, 16)
                if buf[:0] != b'' or not (c == crc_std(seg) or c == crc_modbus(seg)) \
                        or pkt[-2:] != b'\r\n':
                    self.bad += 1
                    continue
                self.on_packet(pkt, seg, writer)

    def on_packet(self, pkt, seg, writer):
        f = fields(seg)
        cn = f.get('CN')
        if cn in ('9011', '9012'):
            self.answers.append((cn, f.get('QN'), f['CP']))
            return
        if f.get('QN') and self.hist_qn and f['QN'][14:] >= '500' and f['MN'] == self.hist_mn \
                and f['QN'][:14] != '':
            self.history.append((f['MN'], f['CP']))
        elif cn in ('2011', '2051', '2061', '2031'):
            self.uploads.append(pkt)
        if 'Flag' in f and int(f['Flag']) & 1:
            ack = 'QN=%s;ST=91;CN=9014;PW=%s;MN=%s;Flag=4;CP=&&&&' % (f['QN'], f['PW'], f['MN'])
            writer.write(frame(ack.encode()))
            self.acks += 1
        # Once simulated time is past 03:00, ask a 2017 unit that wants answers for history
        # and another for a clock setting.
        if not self.asked and cn == '2061' and len(f['MN']) == 24 and f.get('Flag') == '5' \
                and f['CP'].startswith('DataTime=20261101030000') and f['MN'] not in self.avoid:
            self.asked = True
            self.hist_mn = f['MN']
            self.hist_qn = '20261101040000001'
            req = ('QN=%s;ST=31;CN=2061;PW=%s;MN=%s;Flag=5;CP=&&BeginTime=20261101000000;'
                   'EndTime=20261101020000&&' % (self.hist_qn, f['PW'], f['MN']))
            writer.write(frame(req.encode()))
            self.clock_qn = '20261101040000002'
            req = ('QN=%s;ST=31;CN=1012;PW=%s;MN=%s;Flag=5;CP=&&SystemTime=20261101040000&&'
                   % (self.clock_qn, f['PW'], f['MN']))
            writer.write(frame(req.encode()))


def check_(label, ok, what):
    check(ok, '%s: %s' % (label, what))


def outlet_index(_truth, mn):
    """The outlet number of mn (units are numbered in the order of outlets.csv)."""
    return OUTLETS.index(mn)


OUTLETS = []


async def run(label, extra):
    p = Platform()
    server = await asyncio.start_server(p.handle, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    tmp = tempfile.mkdtemp(prefix='plume-sim-wire-')
    truth = os.path.join(tmp, 'truth.jsonl')
    subprocess.run([PLUME, 'sim', *ARGS, '--truth-out', truth], check=True)
    p.avoid = {json.loads(line)['mn'] for line in open(truth) if '"type":"gap"' in line}
    proc = await asyncio.create_subprocess_exec(
        PLUME, 'sim', *ARGS, *extra, '--connect', '127.0.0.1:%d' % port, '--linger', '1',
        '--quiet',
        '--truth-out', truth, stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    except asyncio.TimeoutError:
        proc.kill()
        out = b''
    # The simulator has exited, but what it sent last may still wait in the sockets: read
    # every connection to its end before counting.
    for _ in range(200):
        if p.finished >= p.connections:
            break
        await asyncio.sleep(0.05)
    server.close()
    await server.wait_closed()
    check_(label, proc.returncode == 0, 'plume sim exits 0')
    try:
        summary = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        summary = {}
    check_(label, summary != {}, 'plume sim prints a JSON summary')
    print('# summary: %s' % json.dumps(summary))
    check_(label, p.bad == 0, 'every packet frames with a known CRC (%d bad)' % p.bad)

    printed = subprocess.run([PLUME, 'sim', *ARGS, '--print'], check=True,
                             stdout=subprocess.PIPE).stdout
    expected = [b'##' + x for x in printed.split(b'##') if x]
    check_(label, len(expected) > 1000, 'the printed stream has %d uploads' % len(expected))
    check_(label, sorted(expected) == sorted(p.uploads),
          'uploads on the wire are those of --print, byte for byte (%d vs %d)'
          % (len(p.uploads), len(expected)))

    check_(label, summary.get('acked') == p.acks, 'acked %s = answers sent %d'
          % (summary.get('acked'), p.acks))
    check_(label, summary.get('sent') == len(p.uploads) + len(p.history),
          'sent %s = uploads seen %d' % (summary.get('sent'), len(p.uploads) + len(p.history)))
    check_(label, summary.get('missing') == 0 and summary.get('failed') == 0, 'nothing missing or failed')
    check_(label, summary.get('noack', 0) > 0, 'some units ask for no answer')
    check_(label, summary.get('ack_p99_ms', -1) >= summary.get('ack_p50_ms', 0) > 0, 'latencies reported')

    # History: 9011 QnRtn=1, hours 00, 01, 02, 9012 ExeRtn=1, all for the request's QN.
    check_(label, p.asked, 'the platform asked for history')
    times = sorted(cp.split(';')[0] for _, cp in p.history)
    check_(label, times == ['DataTime=20261101000000', 'DataTime=20261101010000',
                    'DataTime=20261101020000'], 'history answer holds the 3 hours: %s' % times)
    check_(label, ('9011', p.hist_qn, 'QnRtn=1') in p.answers, '9011 QnRtn=1 for the history request')
    check_(label, ('9012', p.hist_qn, 'ExeRtn=1') in p.answers, '9012 ExeRtn=1 for the history request')
    check_(label, ('9011', p.clock_qn, 'QnRtn=1') in p.answers and
          ('9012', p.clock_qn, 'ExeRtn=1') in p.answers, '1012 answered with 9011 and 9012')
    check_(label, summary.get('history_requests') == 1 and summary.get('clock_requests') == 1,
          'requests counted')

    # The history records equal the live ones of the same hours (apart from QN and CRC).
    live = {}
    for pkt in p.uploads:
        f = fields(pkt[6:-6])
        if f['MN'] == p.hist_mn and f['CN'] == '2061':
            live[f['CP'].split(';')[0]] = f['CP']
    same = [cp == live[cp.split(';')[0]] for _, cp in p.history if cp.split(';')[0] in live]
    check_(label, len(same) > 0 and all(same), 'history records equal the live ones (%d compared)'
          % len(same))

    # Gaps: each makes a unit on its own connection hang up and reconnect; forwarding
    # connections stay up.
    gaps = [json.loads(line) for line in open(truth) if '"type":"gap"' in line]
    outlets = json.loads(open(truth).readline())['outlets']
    check_(label, len(gaps) > 0, '%d gaps injected' % len(gaps))
    if '--direct' not in extra:
        check_(label, summary.get('drops') == len(gaps),
               'drops %s = gaps %d' % (summary.get('drops'), len(gaps)))
        check_(label, p.connections == outlets + len(gaps),
               'connections %d = units %d + reconnects after gaps' % (p.connections, outlets))
    else:
        direct, forwarders = int(extra[extra.index('--direct') + 1]), \
            int(extra[extra.index('--forwarders') + 1])
        drops = sum(1 for g in gaps if outlet_index(truth, g['mn']) < direct)
        check_(label, summary.get('drops') == drops, 'drops %s = gaps of direct units %d'
               % (summary.get('drops'), drops))
        check_(label, p.connections == direct + forwarders + drops,
               'connections %d = %d direct + %d forwarding + %d reconnects'
               % (p.connections, direct, forwarders, drops))
    check_(label, summary.get('unsent_gap', 0) > 0, 'records inside gaps are not sent')
    os.remove(truth)
    os.rmdir(tmp)


async def main():
    tmp = tempfile.mkdtemp(prefix='plume-sim-reg-')
    subprocess.run([PLUME, 'sim', *ARGS, '--registry-out', tmp], check=True)
    with open(os.path.join(tmp, 'outlets.csv')) as f:
        OUTLETS.extend(line.split(',')[3] for line in f.read().splitlines()[1:])
    for name in ('facilities.csv', 'outlets.csv', 'limits.csv'):
        os.remove(os.path.join(tmp, name))
    os.rmdir(tmp)
    await run('direct', [])
    await run('forwarded', ['--direct', '5', '--forwarders', '2', '--window', '8'])
    await run('speed', ['--direct', '7', '--forwarders', '1', '--window', '4', '--speed',
                        '40000'])


asyncio.run(main())
pt.finish()
