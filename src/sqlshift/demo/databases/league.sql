PRAGMA foreign_keys = ON;
CREATE TABLE team (
  team_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT,
  founded INTEGER
);
CREATE TABLE stadium (
  stadium_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT,
  capacity INTEGER,
  team_id INTEGER,
  FOREIGN KEY (team_id) REFERENCES team(team_id)
);
CREATE TABLE player (
  player_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  team_id INTEGER,
  position TEXT,
  age INTEGER,
  goals INTEGER,
  FOREIGN KEY (team_id) REFERENCES team(team_id)
);
CREATE TABLE match (
  match_id INTEGER PRIMARY KEY,
  home_team_id INTEGER NOT NULL,
  away_team_id INTEGER NOT NULL,
  home_goals INTEGER,
  away_goals INTEGER,
  match_date TEXT,
  FOREIGN KEY (home_team_id) REFERENCES team(team_id),
  FOREIGN KEY (away_team_id) REFERENCES team(team_id)
);

INSERT INTO team (team_id, name, city, founded) VALUES (1, 'Harbor Hawks', 'Portvale', 1921);
INSERT INTO team (team_id, name, city, founded) VALUES (2, 'Granite Giants', 'Stonebridge', 1934);
INSERT INTO team (team_id, name, city, founded) VALUES (3, 'Meadow Foxes', 'Greenfield', 1950);
INSERT INTO team (team_id, name, city, founded) VALUES (4, 'River Otters', 'Riverton', 1962);
INSERT INTO team (team_id, name, city, founded) VALUES (5, 'Summit Eagles', 'Highpeak', 1978);
INSERT INTO team (team_id, name, city, founded) VALUES (6, 'Coastal Sharks', 'Portvale', 1989);

INSERT INTO stadium (stadium_id, name, city, capacity, team_id) VALUES (1, 'Lighthouse Park', 'Portvale', 18000, 1);
INSERT INTO stadium (stadium_id, name, city, capacity, team_id) VALUES (2, 'Quarry Field', 'Stonebridge', 24000, 2);
INSERT INTO stadium (stadium_id, name, city, capacity, team_id) VALUES (3, 'Clover Ground', 'Greenfield', 12000, 3);
INSERT INTO stadium (stadium_id, name, city, capacity, team_id) VALUES (4, 'Bankside Arena', 'Riverton', 15500, 4);
INSERT INTO stadium (stadium_id, name, city, capacity, team_id) VALUES (5, 'Ridge Stadium', 'Highpeak', 31000, 5);
INSERT INTO stadium (stadium_id, name, city, capacity, team_id) VALUES (6, 'Tidewater Dome', 'Portvale', 9000, 6);

INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (1, 'Alex Horvat', 1, 'Defender', 23, 3);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (2, 'Bruno Oduya', 2, 'Midfielder', 28, 6);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (3, 'Cesar Varga', 3, 'Forward', 33, 9);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (4, 'Dmitri Evans', 4, 'Goalkeeper', 21, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (5, 'Eli Laine', 5, 'Defender', 26, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (6, 'Felix Sorensen', 6, 'Midfielder', 31, 3);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (7, 'Goran Baptiste', 1, 'Forward', 19, 6);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (8, 'Hugo Ilic', 2, 'Goalkeeper', 24, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (9, 'Ivo Pereira', 3, 'Defender', 29, 12);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (10, 'Jonas Wolff', 4, 'Midfielder', 34, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (11, 'Kai Ferreira', 5, 'Forward', 22, 3);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (12, 'Luca Moreno', 6, 'Goalkeeper', 27, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (13, 'Milo Toivonen', 1, 'Defender', 32, 9);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (14, 'Nico Costa', 2, 'Midfielder', 20, 12);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (15, 'Otto Jovanovic', 3, 'Forward', 25, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (16, 'Pavel Quist', 4, 'Goalkeeper', 30, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (17, 'Rafael Zielinski', 5, 'Defender', 18, 6);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (18, 'Sven Gunnarsson', 6, 'Midfielder', 23, 9);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (19, 'Theo Nyberg', 1, 'Forward', 28, 12);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (20, 'Victor Ulloa', 2, 'Goalkeeper', 33, 0);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (21, 'Yannick Dahl', 3, 'Defender', 21, 3);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (22, 'Zane Kruger', 4, 'Midfielder', 26, 6);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (23, 'Marco Rinaldi', 5, 'Forward', 31, 9);
INSERT INTO player (player_id, name, team_id, position, age, goals) VALUES (24, 'Leon Abbott', 6, 'Goalkeeper', 19, 0);

INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (1, 1, 2, 0, 3, '2024-04-04');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (2, 1, 3, 0, 3, '2024-05-07');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (3, 1, 4, 1, 0, '2024-06-10');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (4, 1, 6, 1, 0, '2024-07-13');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (5, 2, 1, 4, 1, '2024-08-16');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (6, 2, 3, 1, 1, '2024-03-19');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (7, 2, 5, 0, 0, '2024-04-22');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (8, 2, 6, 1, 1, '2024-05-25');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (9, 3, 2, 4, 3, '2024-06-01');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (10, 3, 4, 4, 3, '2024-07-04');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (11, 3, 5, 1, 0, '2024-08-07');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (12, 3, 6, 0, 0, '2024-03-10');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (13, 4, 1, 3, 2, '2024-04-13');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (14, 4, 3, 1, 1, '2024-05-16');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (15, 4, 5, 2, 3, '2024-06-19');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (16, 4, 6, 2, 1, '2024-07-22');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (17, 5, 2, 1, 1, '2024-08-25');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (18, 5, 4, 3, 0, '2024-03-01');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (19, 5, 6, 0, 1, '2024-04-04');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (20, 6, 1, 2, 1, '2024-05-07');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (21, 6, 3, 1, 1, '2024-06-10');
INSERT INTO match (match_id, home_team_id, away_team_id, home_goals, away_goals, match_date) VALUES (22, 6, 5, 3, 0, '2024-07-13');
