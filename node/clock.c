/* node/clock: the cluster clock (see clock.h). */
#include "clock.h"

#define NS_PER_MS 1000000ull

void node_clock_start(struct node_clock *c, uint64_t fsm_now, int fresh,
                      uint64_t mono_ns, uint64_t wall_ms)
{
	uint64_t start = fsm_now;

	if (start == 0 && fresh) {
		start = wall_ms;
	}
	c->running = 1;
	c->t_ns = start * NS_PER_MS;
	c->mono = mono_ns;
	c->stamp = start;
}

void node_clock_stop(struct node_clock *c)
{
	c->running = 0;
}

uint64_t node_clock_stamp(struct node_clock *c, uint64_t mono_ns,
                          uint64_t wall_ms)
{
	uint64_t elapsed, wall_ns, t, slew;

	if (!c->running) {
		return c->stamp;
	}
	elapsed = mono_ns > c->mono ? mono_ns - c->mono : 0;
	t = c->t_ns + elapsed;
	/* Toward the wall clock, by at most 1% of the elapsed time: the
	 * clock runs at 0.99x..1.01x of the monotonic rate, never backwards,
	 * never a jump. */
	slew = elapsed / NODE_CLOCK_SLEW_DIV;
	wall_ns = wall_ms * NS_PER_MS;
	if (wall_ns > t) {
		t += wall_ns - t < slew ? wall_ns - t : slew;
	} else if (wall_ns < t) {
		t -= t - wall_ns < slew ? t - wall_ns : slew;
	}
	if (t < c->t_ns) {
		t = c->t_ns; /* cannot happen (slew < elapsed); be safe */
	}
	c->t_ns = t;
	c->mono = mono_ns > c->mono ? mono_ns : c->mono;
	if (t / NS_PER_MS > c->stamp) {
		c->stamp = t / NS_PER_MS;
	}
	return c->stamp;
}
