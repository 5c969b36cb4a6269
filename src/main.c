/* main.c - vmoduled: command line, configuration, signals; starts every
 * module on one libuv loop and runs it until SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "vmodule/config.h"
#include "vmodule/ctl.h"
#include "vmodule/event.h"
#include "vmodule/dialect.h"
#include "vmodule/esp.h"
#include "vmodule/log.h"
#include "vmodule/module.h"

#ifndef VMODULE_VERSION
#define VMODULE_VERSION "0.1.0"
#endif

static struct vm_module *g_modules;
static int g_nmodules;
static uv_signal_t g_sigterm, g_sigint;

static void usage(FILE *f) {
  fprintf(f,
          "usage: vmoduled -c FILE [--log-level LEVEL] [--control PATH]\n"
          "       vmoduled --dialect NAME --link PATH [--state-dir DIR] [--baud N]\n"
          "                [--tcp HOST:PORT] [--power-on WHEN] [--wifi SSID:PASSWORD]...\n"
          "                [--log-level LEVEL] [--control PATH]\n"
          "\n"
          "Runs virtual IoT communication modules, each on a pseudo-terminal.\n"
          "\n"
          "  -c, --config FILE     run the modules of a JSON configuration\n"
          "  -d, --dialect NAME    one module of this dialect (%s)\n"
          "  -l, --link PATH       symlink to create for its PTY\n"
          "  -s, --state-dir DIR   persistent state (default %s when writable,\n"
          "                        else $XDG_STATE_HOME/vmodule or ~/.local/state/vmodule)\n"
          "  -b, --baud N          serial pacing in baud, 0 = unpaced (default 115200)\n"
          "  -t, --tcp HOST:PORT   also serve the serial stream on TCP\n"
          "  -P, --power-on WHEN   first-open (default), first-byte or start\n"
          "  -w, --wifi SSID:PASS  tencent, w800: a simulated access point (repeatable)\n"
          "  -C, --control PATH    control socket (default <state dir>/control.sock)\n"
          "  -L, --log-level L     error, warn, info (default) or debug\n"
          "  -h, --help            this text\n"
          "  -V, --version         print the version\n",
          vm_dialect_names(), VM_DEFAULT_STATE_DIR);
}

/* Descriptors of the daemon itself, next to its modules' (vm_module_fd_need):
 * stdio, libuv's epoll fd, signal pipes, wakeup eventfd and spare /dev/null,
 * the one inotify instance of the PTYs: 12 on /proc/<pid>/fd, rounded up for
 * what libuv's thread pool and the libraries open for a moment. */
#define DAEMON_FDS 16

/* The soft RLIMIT_NOFILE is raised to the hard limit: its usual 1024 only
 * protects programs that use select(), and libuv, libcurl and libmosquitto
 * here do not. Below what the modules may need, the daemon still starts (an
 * idle module holds far fewer), but says which limit to raise. */
static void raise_nofile_limit(const struct vm_config *cfg) {
  struct rlimit rl;
  long need = DAEMON_FDS;

  for (int i = 0; i < cfg->nmodules; i++) need += vm_module_fd_need(&cfg->modules[i]);
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
    vm_log_warn(NULL, "getrlimit RLIMIT_NOFILE: %s", strerror(errno));
    return;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t soft = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
      vm_log_debug(NULL, "RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)soft,
                   (unsigned long long)rl.rlim_cur);
    } else {
      vm_log_warn(NULL, "cannot raise RLIMIT_NOFILE from %llu to %llu: %s",
                  (unsigned long long)soft, (unsigned long long)rl.rlim_max, strerror(errno));
      rl.rlim_cur = soft;
    }
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need)
    vm_log_warn(NULL,
                "RLIMIT_NOFILE %llu is below the ~%ld descriptors %d module%s need (7 per busy "
                "module, +2 with tcp_listen or unix_listen, +1 with trace; %d for the daemon): "
                "raise the hard limit (LimitNOFILE= in systemd, --ulimit nofile= in Docker, "
                "ulimit -Hn)",
                (unsigned long long)rl.rlim_cur, need, cfg->nmodules,
                cfg->nmodules == 1 ? "" : "s", DAEMON_FDS);
}

/* Arguments that cannot go together; says so on stderr. */
static bool cli_misuse(int argc, char **argv, const char *config, const struct vm_cli_module *cli,
                       const cJSON *wifi) {
  if (optind < argc) {
    fprintf(stderr, "vmoduled: unexpected argument \"%s\" (see --help)\n", argv[optind]);
    return true;
  }
  if (config && (cli->dialect || cli->link || cli->state_dir || cli->tcp || cli->baud >= 0 ||
                 cli->power_on || wifi)) {
    fprintf(stderr, "vmoduled: -c cannot be combined with --dialect/--link/--state-dir/--baud/"
                    "--tcp/--power-on/--wifi\n");
    return true;
  }
  const struct vm_dialect *d = cli->dialect ? vm_dialect_find(cli->dialect) : NULL;
  if (wifi && d && !vm_esp_dialect(d)) {
    fprintf(stderr, "vmoduled: --wifi: only the ESP-family dialects (tencent, w800) have Wi-Fi\n");
    return true;
  }
  return false;
}

static void stop_all(void) {
  vm_ctl_stop();
  for (int i = 0; i < g_nmodules; i++) vm_module_stop(&g_modules[i]);
  if (!uv_is_closing((uv_handle_t *)&g_sigterm)) uv_close((uv_handle_t *)&g_sigterm, NULL);
  if (!uv_is_closing((uv_handle_t *)&g_sigint)) uv_close((uv_handle_t *)&g_sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  vm_log_info(NULL, "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  stop_all();
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},    {"dialect", required_argument, NULL, 'd'},
      {"link", required_argument, NULL, 'l'},      {"state-dir", required_argument, NULL, 's'},
      {"baud", required_argument, NULL, 'b'},      {"tcp", required_argument, NULL, 't'},
      {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},         {"control", required_argument, NULL, 'C'},
      {"power-on", required_argument, NULL, 'P'},  {"wifi", required_argument, NULL, 'w'},
      {NULL, 0, NULL, 0},
  };
  const char *config = NULL, *level = NULL, *control = NULL;
  struct vm_cli_module cli = {.baud = -1};
  cJSON *wifi = NULL; /* the dialect object the --wifi options make */
  char err[512];
  int c;
  opterr = 0; /* one line of our own instead of getopt's */
  while ((c = getopt_long(argc, argv, "c:d:l:s:b:t:L:C:P:w:hV", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'd': cli.dialect = optarg; break;
    case 'l': cli.link = optarg; break;
    case 's': cli.state_dir = optarg; break;
    case 't': cli.tcp = optarg; break;
    case 'P': cli.power_on = optarg; break;
    case 'L': level = optarg; break;
    case 'C': control = optarg; break;
    case 'w':
      if (vm_esp_cli_wifi(&wifi, optarg, err, sizeof err)) {
        fprintf(stderr, "vmoduled: %s\n", err);
        cJSON_Delete(wifi);
        return 2;
      }
      break;
    case 'b': {
      char *end;
      cli.baud = strtol(optarg, &end, 10);
      if (*end || end == optarg || cli.baud < 0 || cli.baud > 10000000) {
        fprintf(stderr, "vmoduled: --baud: must be an integer between 0 and 10000000\n");
        cJSON_Delete(wifi);
        return 2;
      }
      break;
    }
    case 'h': usage(stdout); cJSON_Delete(wifi); return 0;
    case 'V': printf("vmoduled %s\n", VMODULE_VERSION); cJSON_Delete(wifi); return 0;
    default:
      cJSON_Delete(wifi);
      if (optopt)
        fprintf(stderr, "vmoduled: option -%c: unknown or missing its value (see --help)\n", optopt);
      else
        fprintf(stderr, "vmoduled: option %s: unknown or missing its value (see --help)\n",
                argv[optind - 1]);
      return 2;
    }
  }
  if (cli_misuse(argc, argv, config, &cli, wifi)) {
    cJSON_Delete(wifi);
    return 2;
  }

  struct vm_config cfg;
  cli.dialect_json = wifi;
  int rc = config ? vm_config_load(&cfg, config, err, sizeof err)
                  : vm_config_single(&cfg, &cli, err, sizeof err);
  cJSON_Delete(wifi);
  if (rc) {
    fprintf(stderr, "vmoduled: %s\n", err);
    vm_config_free(&cfg);
    return 2;
  }
  if (control) {
    free(cfg.control_socket);
    if (!(cfg.control_socket = strdup(control))) {
      vm_config_free(&cfg);
      return 1;
    }
  }
  enum vm_log_level lvl = cfg.log_level;
  if (level && vm_log_parse_level(level, &lvl)) {
    fprintf(stderr, "vmoduled: --log-level: must be one of error, warn, info, debug\n");
    vm_config_free(&cfg);
    return 2;
  }
  vm_log_set_level(lvl);
  if (cfg.state_dir_fallback)
    vm_log_info(NULL, "state directory %s (%s is not writable by this user)", cfg.state_dir,
                VM_DEFAULT_STATE_DIR);
  else
    vm_log_info(NULL, "state directory %s", cfg.state_dir);
  signal(SIGPIPE, SIG_IGN);
  raise_nofile_limit(&cfg);

  uv_loop_t *loop = uv_default_loop();
  uv_signal_init(loop, &g_sigterm);
  uv_signal_init(loop, &g_sigint);
  uv_signal_start(&g_sigterm, on_signal, SIGTERM);
  uv_signal_start(&g_sigint, on_signal, SIGINT);

  g_modules = calloc((size_t)cfg.nmodules, sizeof *g_modules);
  int status = 0;
  for (int i = 0; g_modules && i < cfg.nmodules; i++) {
    g_nmodules = i + 1;
    if (vm_module_start(&g_modules[i], loop, &cfg.modules[i], cfg.state_dir) < 0) {
      vm_log_error(cfg.modules[i].name, "could not start; stopping");
      status = 1;
      stop_all();
      break;
    }
  }
  if (!g_modules) status = 1;
  if (status == 0 && vm_ctl_start(loop, cfg.control_socket, g_modules, g_nmodules) < 0) {
    status = 1;
    stop_all();
  }
  if (status == 0)
    vm_log_info(NULL, "vmoduled %s running %d module%s", VMODULE_VERSION, cfg.nmodules,
                cfg.nmodules == 1 ? "" : "s");

  /* Runs until every handle is closed and every store write has finished. */
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < g_nmodules; i++) vm_module_cleanup(&g_modules[i]);
  free(g_modules);
  vm_event_shutdown();
  vm_config_free(&cfg);
  uv_loop_close(loop);
  vm_log_info(NULL, "stopped");
  return status;
}
