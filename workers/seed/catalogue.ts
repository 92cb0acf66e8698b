/** Fixed vocabularies for synthetic data: names, prosthesis models, actions and error codes. */

export type ModelKind = 'hand' | 'arm' | 'leg';

export interface ModelSpec {
  name: string;
  kind: ModelKind;
  manufacturer: string;
  price: string;
  /** How often customers choose it. */
  weight: number;
  /** Grip force (newtons) of a full grip; `null` for devices without a grip. */
  grip: { mean: number; sd: number } | null;
}

export const MODELS: readonly ModelSpec[] = [
  { name: 'BionicHand Pro 3', kind: 'hand', manufacturer: 'BionicPRO', price: '24900.00', weight: 30, grip: { mean: 42, sd: 9 } },
  { name: 'BionicHand Lite', kind: 'hand', manufacturer: 'BionicPRO', price: '12900.00', weight: 20, grip: { mean: 28, sd: 7 } },
  { name: 'GripMaster X', kind: 'hand', manufacturer: 'Ottobock', price: '31500.00', weight: 8, grip: { mean: 55, sd: 11 } },
  { name: 'FlexArm E2', kind: 'arm', manufacturer: 'BionicPRO', price: '38700.00', weight: 12, grip: { mean: 65, sd: 14 } },
  { name: 'Utah Arm 4', kind: 'arm', manufacturer: 'Fillauer', price: '52000.00', weight: 5, grip: { mean: 80, sd: 16 } },
  { name: 'StrideLeg K3', kind: 'leg', manufacturer: 'BionicPRO', price: '29900.00', weight: 15, grip: null },
  { name: 'C-Walk Genium', kind: 'leg', manufacturer: 'Ottobock', price: '61000.00', weight: 6, grip: null },
  { name: 'Rheo Knee XC', kind: 'leg', manufacturer: 'Ossur', price: '47500.00', weight: 4, grip: null },
];

/** Actions per kind; the flag says whether the action exerts a full grip. */
export const ACTIONS: Record<ModelKind, readonly (readonly [string, number, boolean])[]> = {
  hand: [['grip', 35, true], ['release', 30, false], ['pinch', 15, true], ['rotate_wrist', 12, false], ['point', 8, false]],
  arm: [['grip', 25, true], ['release', 22, false], ['elbow_flex', 25, false], ['elbow_extend', 23, false], ['rotate_wrist', 5, false]],
  leg: [['step', 70, false], ['stairs_up', 8, false], ['stairs_down', 8, false], ['sit', 7, false], ['stand', 7, false]],
};

/** Error codes with their base weights; `E_LOW_BATTERY` is added when the battery runs low. */
export const ERROR_CODES: readonly (readonly [string, number])[] = [
  ['E_SENSOR_TIMEOUT', 40],
  ['E_EMG_NOISE', 30],
  ['E_MOTOR_STALL', 15],
  ['E_COMM_LOST', 10],
  ['E_CALIBRATION', 5],
];

/** Hours from UTC of a region's typical user (users keep a local daily rhythm). */
export const REGION_UTC_OFFSET: Record<string, number> = { eu: 1, uk: 0, ru: 3, us: -5, asia: 8 };

export const FIRST_NAMES = [
  'Anna', 'Maria', 'Elena', 'Olga', 'Sofia', 'Laura', 'Emma', 'Julia', 'Irina', 'Clara', 'Nina', 'Eva',
  'Alexander', 'Dmitri', 'Ivan', 'Lukas', 'Max', 'Paul', 'Sergei', 'Thomas', 'Jonas', 'Mikhail', 'David', 'Leon',
];

export const LAST_NAMES = [
  'Ivanova', 'Petrov', 'Smirnov', 'Kuznetsova', 'Muller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Meyer',
  'Wagner', 'Becker', 'Novak', 'Kowalski', 'Rossi', 'Bianchi', 'Garcia', 'Martin', 'Bernard', 'Dubois',
  'Jansen', 'Berg', 'Lindqvist', 'Sokolov', 'Popova', 'Volkov', 'Hoffmann', 'Koch',
];
