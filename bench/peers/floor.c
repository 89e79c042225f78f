/*
 * floor.c -- the least a server can do per keep-alive request, as a yardstick.
 *
 *     floor PORT DIRECTORY NAME...
 *
 * Reads DIRECTORY/NAME for every NAME into memory once, listens on 127.0.0.1:PORT
 * (backlog 4096) in one process with one epoll loop, and answers each request with
 * one send() of a prebuilt "200 + Content-Length" head and the body:
 *
 *     epoll_wait -> recv -> find "\r\n\r\n" -> compare the request line -> send
 *
 * "GET /files/NAME " for a loaded NAME gets 200 with the file; any other request
 * gets an empty 404.  Several requests in one recv are answered in order (pipelining);
 * a response the socket cannot take at once is finished on EPOLLOUT before the next
 * request is read.  Its CPU time per request is the floor that python -m bench compares
 * the real servers with (bench/servers.py, python -m bench syscalls).
 *
 * What it deliberately does not do -- it is a measuring stick, not a server anyone
 * should deploy:
 *   - no parsing beyond the request line's method and target: header fields are not
 *     read, so "Connection: close", HTTP/1.0 and request bodies are ignored (a body
 *     would be taken for the next request); the client closes, never the server;
 *   - no Date, ETag, Last-Modified, ranges, conditional requests, HEAD, gzip,
 *     percent-decoding or access log; the files are never read again after start;
 *   - no timeouts and no limits beyond the head buffer: a head longer than
 *     HEAD_BUFFER bytes closes the connection; no graceful stop (SIGTERM kills it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD_BUFFER 8192  /* bytes of request kept per connection */
#define MAX_EVENTS 512    /* as nginx's default epoll_events */

struct response {
    const char *target;  /* "/files/NAME" */
    size_t target_len;
    char *bytes;  /* head + body, sent with one send() */
    size_t len;
};

struct conn {
    char in[HEAD_BUFFER];
    size_t in_len;
    size_t scanned;         /* in[0..scanned) holds no end of head: resume the search there */
    const char *out;        /* the unsent rest of a response the socket did not take at once */
    size_t out_len;
};

static struct response *responses;
static int n_responses;
static const char NOT_FOUND[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
static struct conn **conns;  /* by descriptor */
static int max_fds;
static int epfd;

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* Read DIRECTORY/NAME and prebuild its whole response. */
static void load(struct response *r, const char *directory, const char *name) {
    char path[4096], head[256];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) die(path);
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n\r\n", (long long)st.st_size);
    r->len = head_len + st.st_size;
    r->bytes = malloc(r->len);
    if (!r->bytes) die("malloc");
    memcpy(r->bytes, head, head_len);
    for (size_t got = 0; got < (size_t)st.st_size;) {
        ssize_t n = read(fd, r->bytes + head_len + got, st.st_size - got);
        if (n <= 0) die(path);
        got += n;
    }
    close(fd);
    char *target = malloc(strlen(name) + 8);
    sprintf(target, "/files/%s", name);
    r->target = target;
    r->target_len = strlen(target);
}

/* The response to the request whose head is in[0..head_len). */
static void choose(const char *in, size_t head_len, const char **out, size_t *out_len) {
    if (head_len > 4 && memcmp(in, "GET ", 4) == 0) {
        const char *target = in + 4;
        const char *space = memchr(target, ' ', head_len - 4);
        for (int i = 0; space && i < n_responses; i++) {
            if ((size_t)(space - target) == responses[i].target_len &&
                memcmp(target, responses[i].target, responses[i].target_len) == 0) {
                *out = responses[i].bytes;
                *out_len = responses[i].len;
                return;
            }
        }
    }
    *out = NOT_FOUND;
    *out_len = sizeof NOT_FOUND - 1;
}

static void close_conn(int fd) {
    free(conns[fd]);
    conns[fd] = NULL;
    close(fd);  /* also takes it out of the epoll set */
}

static void watch(int fd, unsigned events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl");
}

/* Send what is pending; 1 when all of it went, 0 when the socket is full, -1 on error. */
static int flush_out(int fd, struct conn *c) {
    while (c->out_len) {
        ssize_t n = send(fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        c->out += n;
        c->out_len -= n;
    }
    return 1;
}

/* Answer every complete head in the buffer; stop when a response is left half sent. */
static int answer_buffered(int fd, struct conn *c) {
    size_t start = 0;
    for (;;) {
        char *end = memmem(c->in + c->scanned, c->in_len - c->scanned, "\r\n\r\n", 4);
        if (!end) {
            /* keep the last 3 bytes in the next search: "\r\n\r" + "\n" may straddle recvs */
            c->scanned = c->in_len > start + 3 ? c->in_len - 3 : start;
            break;
        }
        size_t head_end = end + 4 - c->in;
        choose(c->in + start, head_end - start, &c->out, &c->out_len);
        start = c->scanned = head_end;
        int sent = flush_out(fd, c);
        if (sent < 0) return -1;
        if (sent == 0) {
            watch(fd, EPOLLOUT);  /* finish this one before reading the next */
            break;
        }
    }
    if (start) {  /* drop the answered heads; usually nothing is left to move */
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        c->scanned -= start;
    }
    return 0;
}

static void on_readable(int fd, struct conn *c) {
    ssize_t n = recv(fd, c->in + c->in_len, HEAD_BUFFER - c->in_len, 0);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) return;
        close_conn(fd);  /* the client closed, or an error */
        return;
    }
    c->in_len += n;
    if (answer_buffered(fd, c) < 0 || (c->in_len == HEAD_BUFFER && !c->out_len)) close_conn(fd);
}

static void on_writable(int fd, struct conn *c) {
    int sent = flush_out(fd, c);
    if (sent < 0) {
        close_conn(fd);
        return;
    }
    if (sent == 1) {
        watch(fd, EPOLLIN);
        if (answer_buffered(fd, c) < 0) close_conn(fd);
    }
}

static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) return;  /* EAGAIN: none left; anything else: try again on the next event */
        if (fd >= max_fds || !(conns[fd] = calloc(1, sizeof(struct conn)))) {
            close(fd);
            continue;
        }
        int one = 1;  /* as nginx and core: a response is one send, never held back */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) close_conn(fd);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT DIRECTORY NAME...\n", argv[0]);
        return 2;
    }
    n_responses = argc - 3;
    responses = calloc(n_responses, sizeof *responses);
    for (int i = 0; i < n_responses; i++) load(&responses[i], argv[2], argv[3 + i]);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    max_fds = rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
    conns = calloc(max_fds, sizeof *conns);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(listener, 4096) < 0) die("listen");

    epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev) < 0) die("epoll");
    printf("Listening on http://127.0.0.1:%s\n", argv[1]);  /* the harness waits for this line */
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                accept_all(listener);
                continue;
            }
            struct conn *c = conns[fd];
            if (!c) continue;  /* closed earlier in this round */
            if (c->out_len)
                on_writable(fd, c);
            else
                on_readable(fd, c);
        }
    }
}
