/* printf-lite: %d %i %u %x %X %p %s %c %% with the l, ll and z length
 * modifiers, a field width and the 0 and - flags. Always NUL-terminates. */
#include "fw.h"

struct fw_out {
	char *buf;
	size_t size, len;
};

static void fw_out_c(struct fw_out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void fw_out_pad(struct fw_out *o, const char *s, size_t n, int width, bool left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;

	/* Zero padding goes after a sign. */
	if (pad == '0' && n && *s == '-') {
		fw_out_c(o, *s++);
		n--;
	}
	while (!left && fill-- > 0)
		fw_out_c(o, pad);
	while (n--)
		fw_out_c(o, *s++);
	while (left && fill-- > 0)
		fw_out_c(o, ' ');
}

static size_t fw_utoa(char *end, uint64_t v, unsigned base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;

	do {
		*--p = digits[v % base];
		v /= base;
	} while (v);
	return (size_t)(end - p);
}

int fw_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct fw_out o = { buf, size, 0 };
	char num[24];

	for (; *fmt; fmt++) {
		int width = 0, lng = 0;
		bool left = false, neg = false;
		char pad = ' ', c;
		const char *s;
		uint64_t v;
		size_t n;

		if (*fmt != '%') {
			fw_out_c(&o, *fmt);
			continue;
		}
		for (fmt++; *fmt == '0' || *fmt == '-'; fmt++) {
			if (*fmt == '0')
				pad = '0';
			else
				left = true;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			lng++, fmt++;
		c = *fmt;
		switch (c) {
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			fw_out_pad(&o, s, strlen(s), width, left, ' ');
			continue;
		case 'c':
			num[0] = (char)va_arg(ap, int);
			fw_out_pad(&o, num, 1, width, left, ' ');
			continue;
		case 'd':
		case 'i': {
			int64_t sv = lng ? va_arg(ap, long) : va_arg(ap, int);

			neg = sv < 0;
			v = neg ? -(uint64_t)sv : (uint64_t)sv;
			break;
		}
		case 'u':
		case 'x':
		case 'X':
			v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			break;
		case 'p':
			v = (uintptr_t)va_arg(ap, void *);
			fw_out_c(&o, '0');
			fw_out_c(&o, 'x');
			c = 'x';
			break;
		case '%':
			fw_out_c(&o, '%');
			continue;
		default:
			/* Unknown conversion: print it as is. */
			fw_out_c(&o, '%');
			if (!c)
				goto out;
			fw_out_c(&o, c);
			continue;
		}
		/* At most 20 digits: num has room for the sign. */
		n = fw_utoa(num + sizeof(num), v, c == 'x' || c == 'X' || c == 'p' ? 16 : 10,
			    c == 'X');
		if (neg)
			num[sizeof(num) - ++n] = '-';
		fw_out_pad(&o, num + sizeof(num) - n, n, width, left, left ? ' ' : pad);
	}
out:
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int fw_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = fw_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void fw_printf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	fw_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fw_puts(buf);
}
