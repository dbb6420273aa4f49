// The floor of tracing a server's read and write with seccomp and ptrace:
// an echo round trip over loopback with the server untraced (mode 0),
// stopped at each call's entry only (1), or at its entry and exit (2).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <time.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <linux/audit.h>
#include <sys/syscall.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static void filter(){
  struct sock_filter f[]={
    BPF_STMT(BPF_LD|BPF_W|BPF_ABS,offsetof(struct seccomp_data,nr)),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,__NR_read,2,0),
    BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K,__NR_write,1,0),
    BPF_STMT(BPF_RET|BPF_K,SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET|BPF_K,SECCOMP_RET_TRACE)};
  struct sock_fprog p={5,f};
  prctl(PR_SET_NO_NEW_PRIVS,1,0,0,0);
  if(prctl(PR_SET_SECCOMP,SECCOMP_MODE_FILTER,&p)) {perror("seccomp");exit(1);}
}
int main(int argc,char**argv){
  int mode=atoi(argv[1]); int n=atoi(argv[2]);
  int l=socket(AF_INET,SOCK_STREAM,0); int one=1;
  setsockopt(l,SOL_SOCKET,SO_REUSEADDR,&one,4);
  struct sockaddr_in a={.sin_family=AF_INET,.sin_port=0,.sin_addr.s_addr=htonl(0x7f000001)};
  bind(l,(void*)&a,sizeof a); listen(l,1); socklen_t al=sizeof a; getsockname(l,(void*)&a,&al);
  pid_t s=fork();
  if(s==0){
    if(mode){ptrace(PTRACE_TRACEME,0,0,0); raise(SIGSTOP); filter();}
    int c=accept(l,0,0); char b[64];
    for(;;){ssize_t r=read(c,b,64); if(r<=0) _exit(0); write(c,b,r);}
  }
  close(l);
  if(mode){int st; waitpid(s,&st,0);
    ptrace(PTRACE_SETOPTIONS,s,0,PTRACE_O_TRACESECCOMP|PTRACE_O_TRACESYSGOOD|PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT,s,0,0);}
  pid_t c=fork();
  if(c==0){
    int fd=socket(AF_INET,SOCK_STREAM,0); setsockopt(fd,IPPROTO_TCP,TCP_NODELAY,&one,4);
    connect(fd,(void*)&a,sizeof a); char b[64]={0};
    for(int i=0;i<1000;i++){write(fd,b,64);read(fd,b,64);}
    double t=now();
    for(int i=0;i<n;i++){write(fd,b,64); int g=0; while(g<64){int r=read(fd,b,64-g); if(r<=0)_exit(1); g+=r;}}
    double e=now()-t; printf("mode %d: %.1f us/RT\n",mode,e/n*1e6); fflush(stdout); _exit(0);
  }
  if(mode){ for(;;){int st; pid_t t=waitpid(s,&st,__WALL); if(t<0||WIFEXITED(st)||WIFSIGNALED(st))break;
      int ev=(st>>16)&0xffff;
      if(ev==PTRACE_EVENT_SECCOMP) ptrace(mode==2?PTRACE_SYSCALL:PTRACE_CONT,t,0,0);
      else if(WSTOPSIG(st)==(SIGTRAP|0x80)) ptrace(PTRACE_CONT,t,0,0);
      else ptrace(PTRACE_CONT,t,0,WSTOPSIG(st));
      int cs; if(waitpid(c,&cs,WNOHANG)==c){kill(s,SIGKILL);}
  }}
  int cs; waitpid(c,&cs,0); kill(s,SIGKILL); return 0;
}
