#!/usr/bin/perl
# Small /proc helpers for run.sh (perl-base only, no modules beyond core).
# (From the team's relay harness; `mem` can leave out the reaper.)
#   procstat.pl cpu ROOTPID          CPU ticks used by ROOTPID's process tree:
#                                    sum over live tree of utime+stime+cutime+cstime
#                                    (children that exited are in their parent's c*time)
#   procstat.pl cgcpu CGROUPDIR      CPU ticks used by all processes ever in a cgroup
#                                    (v1 cpuacct.usage or v2 cpu.stat usage_usec)
#   procstat.pl mem ROOTPID|CGROUPDIR SECS [SKIPPID]
#                                    sample RSS/PSS summed over the tree (or the cgroup's
#                                    processes), leaving out SKIPPID (the reaper), every
#                                    SECS until SIGTERM,
#                                    then print "peak_rss_kb peak_pss_kb peak_nproc"
#   procstat.pl sys                  /proc/stat "cpu" line: user nice system idle iowait irq softirq steal
#   procstat.pl waitcount FILE TARGET TIMEOUT [STALL]
#                                    wait until smtp-sink counter file shows mesg>=TARGET,
#                                    at most TIMEOUT s, or STALL s without progress;
#                                    print "epoch_seconds count" (count<TARGET on timeout)
#   procstat.pl hz                   clock ticks per second
use strict; use warnings; use Time::HiRes qw(time sleep);

sub tree {                       # root pid -> list of pids in its tree
    my ($root) = @_;
    my %kids;
    opendir(my $d, "/proc") or die;
    for my $p (grep { /^\d+$/ } readdir $d) {
        open(my $f, "<", "/proc/$p/stat") or next;
        my $s = <$f>; close $f; next unless $s;
        $s =~ s/^.*\) //s;                      # drop "pid (comm) "
        my @x = split / /, $s;                  # x[0]=state x[1]=ppid
        push @{ $kids{$x[1]} }, $p;
    }
    closedir $d;
    my @out = ($root); my @todo = ($root);
    while (@todo) { my $p = shift @todo; for (@{ $kids{$p} || [] }) { push @out, $_; push @todo, $_; } }
    return grep { -e "/proc/$_" } @out;
}

sub ticks {
    my ($p) = @_;
    open(my $f, "<", "/proc/$p/stat") or return 0;
    my $s = <$f>; close $f; return 0 unless $s;
    $s =~ s/^.*\) //s; my @x = split / /, $s;
    return $x[11] + $x[12] + $x[13] + $x[14];   # utime stime cutime cstime
}

sub mem {                        # (rss_kb, pss_kb) of one pid
    my ($p) = @_; my ($rss, $pss) = (0, 0);
    if (open(my $f, "<", "/proc/$p/smaps_rollup")) {
        while (<$f>) { $rss = $1 if /^Rss:\s+(\d+)/; $pss = $1 if /^Pss:\s+(\d+)/; }
        close $f;
    }
    return ($rss, $pss);
}

sub hz { my $hz = `getconf CLK_TCK`; chomp $hz; return $hz || 100; }

sub members {                    # pid (tree) or cgroup dir -> pids
    my ($what) = @_;
    return tree($what) if $what =~ /^\d+$/;
    open(my $f, "<", "$what/cgroup.procs") or return ();
    my @p = map { chomp; $_ } <$f>; close $f; return @p;
}

my $cmd = shift // '';
if ($cmd eq 'cpu') {
    my $t = 0; $t += ticks($_) for tree($ARGV[0]); print "$t\n";
} elsif ($cmd eq 'cgcpu') {
    my $d = $ARGV[0]; my $ns;
    if (open(my $f, "<", "$d/cpuacct.usage")) { $ns = <$f>; close $f; }
    elsif (open($f, "<", "$d/cpu.stat")) { while (<$f>) { $ns = $1 * 1000 if /^usage_usec (\d+)/ } close $f; }
    die "no cpu accounting in $d\n" unless defined $ns;
    printf "%.0f\n", $ns * hz() / 1e9;
} elsif ($cmd eq 'mem') {
    my ($root, $iv, $skip) = @ARGV; my ($pr, $pp, $pn) = (0, 0, 0); my $stop = 0;
    $skip = -1 unless defined $skip && $skip =~ /^\d+$/;
    $SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
    while (!$stop) {
        my ($r, $s, $n) = (0, 0, 0);
        for (grep { $_ != $skip } members($root)) { my ($a, $b) = mem($_); $r += $a; $s += $b; $n++; }
        $pr = $r if $r > $pr; $pp = $s if $s > $pp; $pn = $n if $n > $pn;
        sleep $iv;
    }
    print "$pr $pp $pn\n";
} elsif ($cmd eq 'sys') {
    open(my $f, "<", "/proc/stat") or die; my $l = <$f>; close $f;
    my @x = split ' ', $l; shift @x; print join(' ', @x[0..7]), "\n";
} elsif ($cmd eq 'waitcount') {
    my ($file, $target, $timeout, $stall) = @ARGV; $stall ||= $timeout;
    my $end = time + $timeout; my ($c, $last, $tlast) = (0, -1, time);
    while (1) {
        if (open(my $f, "<", $file)) {
            my $sz = -s $f; seek($f, $sz > 200 ? $sz - 200 : 0, 0);
            local $/; my $b = <$f> // ''; close $f;
            my @m = ($b =~ /mesg=(\d+)/g); $c = $m[-1] if @m;
        }
        if ($c != $last) { ($last, $tlast) = ($c, time); }
        last if $c >= $target || time > $end || time - $tlast > $stall;
        sleep 0.02;
    }
    printf "%.3f %d\n", ($c >= $target ? time : $tlast), $c;
} elsif ($cmd eq 'hz') {
    print hz(), "\n";
} else { die "usage: see header of $0\n"; }
