/* node/log: leveled log lines on stderr, one write per line. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int min_level = NODE_LOG_INFO;
static unsigned long long log_node_id;

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void node_log_init(int level, unsigned long long node_id)
{
	min_level = level;
	log_node_id = node_id;
}

int node_log_parse_level(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			return i;
		}
	}
	return -1;
}

void node_log(int level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level < min_level) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof line,
	             "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ n%llu %-5s ",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_node_id,
	             level_names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2) {
		n = (int)sizeof line - 2;
	}
	line[n++] = '\n';
	/* One write(2) per line so lines of concurrent processes don't mix. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nothing sensible to do when stderr is gone. */
	}
}
