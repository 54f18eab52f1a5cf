/* SPDX-License-Identifier: MIT */
#pragma once

/* forge-vminit's network set-up (vm-net.c). */

/* Configures eth0 from forge.net=ADDR/PREFIX,GATEWAY,DNS (docs/vm-protocol.md):
 * address, link up, default route, loopback up; /etc/resolv.conf and
 * /etc/hosts (with host.forge.internal at GATEWAY) bound from /run/forge-net
 * over the image's. Returns -1 with a message in errbuf on failure. */
int vm_net_setup(const char *spec, const char *hostname, char *errbuf, size_t errlen);
