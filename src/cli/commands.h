/* commands.h - entry points of the mixq subcommands; argv[0] is the command name. */
#ifndef MIXQ_COMMANDS_H
#define MIXQ_COMMANDS_H

int cmd_convert(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
