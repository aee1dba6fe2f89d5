// SPDX-License-Identifier: GPL-2.0
/*
 * dvm_trace_test: the kvm_dvm tracepoints report every message. Two nodes
 * over loopback exchange a counted number of echo requests with the
 * dvm_send and dvm_recv events on; the trace must hold exactly that many
 * requests and replies of type ECHO on each side. Then, with vCPU 0 on
 * node 0 and vCPU 1 on node 1, each vCPU runs once (its owner sends its
 * APIC registers: dvm_apic_mirror) and KVM_NMI on node 0's copy of vCPU 1
 * is forwarded a counted number of times (dvm_irq on both sides).
 * Then node 1's clock check at placement (dvm_clock) with its CLOCK
 * requests. Last, a VM-wide pause, resume and power-off: each node's part
 * of each (dvm_vm_control), node 1's clock check at the resume.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "dvm_util.h"

#define TRACEFS		"/sys/kernel/tracing"
#define PINGS		25
#define NMIS		7

static void trace_write(const char *file, const char *val)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	f = fopen(path, "w");
	TEST_ASSERT(f, "open %s", path);
	TEST_ASSERT(fputs(val, f) >= 0 && !fclose(f), "write %s", path);
}

static bool tracefs_ready(void)
{
	struct stat st;

	if (!stat(TRACEFS "/events/kvm_dvm", &st))
		return true;
	mount("tracefs", TRACEFS, "tracefs", 0, NULL);
	return !stat(TRACEFS "/events/kvm_dvm", &st);
}

/* Count trace lines of @event with ECHO type and the given flags. */
static int count_echo(const char *event, const char *flags)
{
	char line[512], want[64];
	int n = 0;
	FILE *f;

	f = fopen(TRACEFS "/trace", "r");
	TEST_ASSERT(f, "open trace");
	snprintf(want, sizeof(want), "type %d flags %s ", DVM_MSG_ECHO, flags);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, event) && strstr(line, want))
			n++;
	fclose(f);
	return n;
}

static int count_lines(const char *what)
{
	char line[512];
	int n = 0;
	FILE *f;

	f = fopen(TRACEFS "/trace", "r");
	TEST_ASSERT(f, "open trace");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

static void guest_done(void)
{
	GUEST_DONE();
}

/* NMIs node 1 accepted for vCPU 1 (dvm_irq_received[NMI]). */
static uint64_t nmis_received(struct kvm_vm *vm)
{
	uint64_t v[KVM_DVM_STAT_IRQ_MODES];

	dvm_stat_read(vm, "dvm_irq_received", v, KVM_DVM_STAT_IRQ_MODES);
	return v[4];	/* NMI */
}

static void test_irq_events(void)
{
	int i, sent, rcvd, mirror_tx, mirror_rx;
	struct dvm_node nodes[2];
	uint64_t t0;

	dvm_nodes_create(nodes, 2, 2, guest_done);
	dvm_nodes_join(nodes, 2, "trace irq");
	dvm_place_round_robin(nodes, 2, 2);
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "trace irq: placement");

	trace_write("trace", "");
	trace_write("events/kvm_dvm/enable", "1");
	trace_write("tracing_on", "1");
	for (i = 0; i < 2; i++)
		dvm_run_done(nodes[i].vcpus[i], "trace irq");
	for (i = 0; i < NMIS; i++)
		vcpu_ioctl(nodes[0].vcpus[1], KVM_NMI, NULL);
	t0 = dvm_now_ns();
	while (nmis_received(nodes[1].vm) < NMIS)
		DVM_ASSERT(dvm_now_ns() - t0 < 60 * 1000000000ull,
			   "node 1 accepted %lu of %d NMIs",
			   (unsigned long)nmis_received(nodes[1].vm), NMIS);
	trace_write("tracing_on", "0");
	trace_write("events/kvm_dvm/enable", "0");

	sent = count_lines("dvm_irq: node 0 to node 1 vcpu 1 mode 4 vector 0 err 0");
	rcvd = count_lines("dvm_irq: node 1 from node 0 vcpu 1 mode 4 vector 0 err 0");
	mirror_tx = count_lines("dvm_apic_mirror: node 1 to node 0 vcpu 1 ");
	mirror_rx = count_lines("dvm_apic_mirror: node 0 from node 1 vcpu 1 ");
	DVM_ASSERT(sent == NMIS && rcvd == NMIS && mirror_tx >= 1 &&
		   mirror_rx == mirror_tx,
		   "trace: %d NMIs sent, %d received, want %d; APIC of vCPU 1 sent %d times, applied %d",
		   sent, rcvd, NMIS, mirror_tx, mirror_rx);
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("dvm_irq/dvm_apic_mirror: %d NMIs forwarded and vCPU 1's APIC traced on both sides\n",
			      NMIS);
}

#define DVM_MSG_CLOCK		22	/* on the wire */
#define CLOCK_SAMPLES		16	/* per check */

/*
 * Node 1's clock check at placement: one dvm_clock event saying it
 * stepped (the nodes' clocks start apart), CLOCK_SAMPLES requests sent
 * and as many replies. No periodic check runs: the period is the longest.
 */
static void test_clock_events(void)
{
	struct dvm_node nodes[2];
	int checks, stepped, reqs, replies;
	char want[64];

	dvm_kvm_param_write("dvm_clock_period_ms", 60000);
	dvm_nodes_create(nodes, 2, 2, guest_done);
	dvm_nodes_join(nodes, 2, "trace clock");
	dvm_place_round_robin(nodes, 2, 2);

	trace_write("trace", "");
	trace_write("events/kvm_dvm/enable", "1");
	trace_write("tracing_on", "1");
	dvm_set_vcpus_all(nodes, 2);
	trace_write("tracing_on", "0");
	trace_write("events/kvm_dvm/enable", "0");
	dvm_kvm_param_write("dvm_clock_period_ms", 1000);
	dvm_assert_all_ok(nodes, 2, "trace clock: placement");

	checks = count_lines("dvm_clock: node 1 rtt ");
	stepped = count_lines("ns: stepped");
	snprintf(want, sizeof(want), "dvm_send: node 1 peer 0 type %d flags 0x0 ",
		 DVM_MSG_CLOCK);
	reqs = count_lines(want);
	snprintf(want, sizeof(want), "dvm_recv: node 1 peer 0 type %d flags 0x1 ",
		 DVM_MSG_CLOCK);
	replies = count_lines(want);
	DVM_ASSERT(checks == 1 && stepped == 1 &&
		   dvm_stat(nodes[1].vm, "dvm_clock_checks") == 1 &&
		   reqs == CLOCK_SAMPLES && replies == CLOCK_SAMPLES &&
		   !count_lines("dvm_clock: node 0 "),
		   "trace: %d clock checks (%d stepped), %d CLOCK requests, %d replies; want 1, 1, %d, %d",
		   checks, stepped, reqs, replies, CLOCK_SAMPLES,
		   CLOCK_SAMPLES);
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("dvm_clock: node 1's check at placement traced, stepped, with its %d CLOCK requests and replies\n",
			      CLOCK_SAMPLES);
}

/*
 * PAUSE, RESUME, POWEROFF from node 0: each node traces its part of each,
 * the power-off's pause included, all successful; node 1 checks its
 * clocks at the resume.
 */
static void test_vm_control_events(void)
{
	static const char * const parts[] = {
		"pause: 0 in", "resume: 0 in", "poweroff: 0 in",
	};
	static const int want[] = { 2, 1, 1 };
	struct dvm_node nodes[2];
	char line[64];
	int n, i, node, checks;

	/* No periodic check: the one at the resume is the only one. */
	dvm_kvm_param_write("dvm_clock_period_ms", 60000);
	dvm_join_flags = KVM_DVM_JOIN_FORWARD_IO;
	dvm_nodes_create(nodes, 2, 2, guest_done);
	dvm_nodes_join(nodes, 2, "trace vm_control");
	dvm_join_flags = 0;
	dvm_place_round_robin(nodes, 2, 2);
	dvm_set_vcpus_all(nodes, 2);
	dvm_assert_all_ok(nodes, 2, "trace vm_control: placement");

	trace_write("trace", "");
	trace_write("events/kvm_dvm/enable", "1");
	trace_write("tracing_on", "1");
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_PAUSE);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_RESUME);
	dvm_vm_control(nodes[0].vm, KVM_DVM_VM_POWEROFF);
	trace_write("tracing_on", "0");
	trace_write("events/kvm_dvm/enable", "0");
	dvm_kvm_param_write("dvm_clock_period_ms", 1000);

	for (node = 0; node < 2; node++) {
		for (i = 0; i < 3; i++) {
			snprintf(line, sizeof(line),
				 "dvm_vm_control: node %d %s", node, parts[i]);
			n = count_lines(line);
			DVM_ASSERT(n == want[i], "trace: %d lines '%s', want %d",
				   n, line, want[i]);
		}
	}
	checks = count_lines("dvm_clock: node 1 rtt ");
	DVM_ASSERT(checks == 1 && count_lines("dvm_vm_control: ") == 8,
		   "trace: %d clock checks at the resume, %d dvm_vm_control lines; want 1, 8",
		   checks, count_lines("dvm_vm_control: "));
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("dvm_vm_control: each node's part of a pause, a resume and a power-off (with its pause) traced, node 1's clock check at the resume\n");
}

int main(void)
{
	struct dvm_node nodes[2];
	struct kvm_dvm_ping p;
	int sent, recv_replies, recv_reqs, sent_replies;

	ksft_print_header();
	dvm_require_abi();
	if (!tracefs_ready())
		ksft_exit_skip("no tracefs with kvm_dvm events\n");
	ksft_set_plan(4);

	dvm_nodes_create(nodes, 2, 0, NULL);
	dvm_nodes_join(nodes, 2, "trace");

	trace_write("tracing_on", "0");
	trace_write("trace", "");
	trace_write("events/kvm_dvm/enable", "1");
	trace_write("tracing_on", "1");
	dvm_ping_init(&p, 1, 64, PINGS, 1);
	DVM_ASSERT_OK(__dvm_ping(nodes[0].vm, &p), "PING");
	trace_write("tracing_on", "0");
	trace_write("events/kvm_dvm/enable", "0");

	/* Node 0 sends requests and receives replies; node 1 the opposite. */
	sent = count_echo("dvm_send: node 0 peer 1 ", "0x0");
	recv_replies = count_echo("dvm_recv: node 0 peer 1 ", "0x1");
	recv_reqs = count_echo("dvm_recv: node 1 peer 0 ", "0x0");
	sent_replies = count_echo("dvm_send: node 1 peer 0 ", "0x1");
	DVM_ASSERT(sent == PINGS && recv_replies == PINGS &&
		   recv_reqs == PINGS && sent_replies == PINGS,
		   "trace: node 0 sent %d requests, got %d replies; node 1 got %d requests, sent %d replies; want %d each",
		   sent, recv_replies, recv_reqs, sent_replies, PINGS);
	dvm_free_all(nodes, 2);
	ksft_test_result_pass("dvm_send/dvm_recv: %d ECHO requests and replies traced on both sides\n",
			      PINGS);
	test_irq_events();
	test_clock_events();
	test_vm_control_events();
	ksft_finished();
}
