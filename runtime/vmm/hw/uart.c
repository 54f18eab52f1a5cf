/* SPDX-License-Identifier: MIT */
/*
 * An 8250/16550A UART: the guest's console. Transmit is immediate (THR is
 * always empty), receive goes through a FIFO filled from the host's stdin.
 * The interrupt line follows IIR like a real chip's INTR pin: raised while
 * an enabled condition is pending, lowered when it clears.
 */
#include "runtime/vmm/vmm-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RX_SIZE 4096
#define LINE_SIZE 256
#define PANIC_TEXT "Kernel panic - not syncing"

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

struct uart {
        pthread_mutex_t lock;
        int out_fd;
        void (*set_irq)(void *opaque, int level);
        void *opaque;
        int irq_level;
        uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
        bool thr_pending;
        uint8_t rx[RX_SIZE];
        size_t rx_head, rx_count;
        char line[LINE_SIZE];
        size_t line_len;
        bool panic;
        char panic_line[LINE_SIZE];
};

uart *uart_new(int out_fd, void (*set_irq)(void *opaque, int level), void *opaque)
{
        uart *u = calloc(1, sizeof(*u));

        if (u == NULL)
                return NULL;
        pthread_mutex_init(&u->lock, NULL);
        u->out_fd = out_fd;
        u->set_irq = set_irq;
        u->opaque = opaque;
        u->dll = 12; /* 9600 baud */
        return u;
}

void uart_free(uart *u)
{
        if (u == NULL)
                return;
        pthread_mutex_destroy(&u->lock);
        free(u);
}

static uint8_t iir(const uart *u)
{
        uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

        if ((u->ier & IER_RDI) && u->rx_count > 0)
                return IIR_RDI | fifo;
        if ((u->ier & IER_THRI) && u->thr_pending)
                return IIR_THRI | fifo;
        return IIR_NONE | fifo;
}

static void update_irq(uart *u)
{
        int level = !(iir(u) & IIR_NONE);

        if (level != u->irq_level) {
                u->irq_level = level;
                if (u->set_irq)
                        u->set_irq(u->opaque, level);
        }
}

static void rx_push(uart *u, uint8_t c)
{
        if (u->rx_count < RX_SIZE) {
                u->rx[(u->rx_head + u->rx_count) % RX_SIZE] = c;
                u->rx_count++;
        }
}

static void track_line(uart *u, uint8_t c)
{
        if (c == '\n' || u->line_len == LINE_SIZE - 1) {
                u->line[u->line_len] = '\0';
                if (!u->panic && strstr(u->line, PANIC_TEXT) != NULL) {
                        u->panic = true;
                        memcpy(u->panic_line, u->line, u->line_len + 1);
                }
                u->line_len = 0;
                return;
        }
        if (c != '\r')
                u->line[u->line_len++] = (char)c;
}

static void transmit(uart *u, uint8_t c)
{
        if (u->mcr & MCR_LOOP) {
                rx_push(u, c);
        } else {
                while (write(u->out_fd, &c, 1) < 0 && errno == EINTR)
                        ;
                track_line(u, c);
        }
        u->thr_pending = true;
}

static uint8_t msr(const uart *u)
{
        if (u->mcr & MCR_LOOP) {
                /* loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
                return (uint8_t)(((u->mcr & 0x01) << 5) | ((u->mcr & 0x02) << 3) |
                                 ((u->mcr & 0x04) << 4) | ((u->mcr & 0x08) << 4));
        }
        return 0xb0; /* DCD, DSR, CTS */
}

static uint8_t reg_read(uart *u, unsigned off)
{
        uint8_t v = 0;

        switch (off) {
        case 0:
                if (u->lcr & LCR_DLAB)
                        return u->dll;
                if (u->rx_count > 0) {
                        v = u->rx[u->rx_head];
                        u->rx_head = (u->rx_head + 1) % RX_SIZE;
                        u->rx_count--;
                }
                return v;
        case 1:
                return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        case 2:
                v = iir(u);
                if ((v & 0x0f) == IIR_THRI)
                        u->thr_pending = false; /* reading IIR acknowledges THRE */
                return v;
        case 3:
                return u->lcr;
        case 4:
                return u->mcr;
        case 5:
                return LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
        case 6:
                return msr(u);
        default:
                return u->scr;
        }
}

static void reg_write(uart *u, unsigned off, uint8_t v)
{
        switch (off) {
        case 0:
                if (u->lcr & LCR_DLAB)
                        u->dll = v;
                else
                        transmit(u, v);
                break;
        case 1:
                if (u->lcr & LCR_DLAB) {
                        u->dlm = v;
                } else {
                        /* enabling THRE interrupts with THR empty raises one at once */
                        if ((v & IER_THRI) && !(u->ier & IER_THRI))
                                u->thr_pending = true;
                        u->ier = v & 0x0f;
                }
                break;
        case 2:
                u->fcr = v & 0xc9;
                if (v & FCR_CLEAR_RX)
                        u->rx_head = u->rx_count = 0;
                break;
        case 3:
                u->lcr = v;
                break;
        case 4:
                u->mcr = v & 0x1f;
                break;
        case 7:
                u->scr = v;
                break;
        default:
                break;
        }
}

void uart_io(uart *u, unsigned off, uint8_t *data, bool write)
{
        pthread_mutex_lock(&u->lock);
        if (off < 8) {
                if (write)
                        reg_write(u, off, *data);
                else
                        *data = reg_read(u, off);
                update_irq(u);
        } else if (!write) {
                *data = 0xff;
        }
        pthread_mutex_unlock(&u->lock);
}

size_t uart_input(uart *u, const uint8_t *buf, size_t len)
{
        size_t n = 0;

        pthread_mutex_lock(&u->lock);
        while (n < len && u->rx_count < RX_SIZE)
                rx_push(u, buf[n++]);
        update_irq(u);
        pthread_mutex_unlock(&u->lock);
        return n;
}

bool uart_can_input(uart *u)
{
        bool r;

        pthread_mutex_lock(&u->lock);
        r = u->rx_count < RX_SIZE;
        pthread_mutex_unlock(&u->lock);
        return r;
}

bool uart_panicked(uart *u, char *line, size_t size)
{
        bool r;

        pthread_mutex_lock(&u->lock);
        r = u->panic;
        if (r && size > 0)
                snprintf(line, size, "%s", u->panic_line);
        pthread_mutex_unlock(&u->lock);
        return r;
}
