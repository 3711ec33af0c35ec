// Process helpers of the script worker and its pool, which Swift's Glibc module does not show.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>

// prctl is variadic, which Swift does not import: the worker asks to be killed with its parent.
static inline int switchyard_die_with_parent(void) { return prctl(PR_SET_PDEATHSIG, SIGKILL); }

// GNU extensions (glibc 2.34+ for closefrom), declared here since Swift imports glibc without _GNU_SOURCE.
extern int pipe2(int pipefd[2], int flags);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
static inline int switchyard_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
static inline int switchyard_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
